// Synthetic grounding: images of 1-5 coloured shapes and a referring expression that names
// exactly one of them, with its normalised box as the ground truth.
//
//   perpo::SynthRng rng = perpo::SynthRng::for_record(seed, "grounding", i);
//   perpo::GroundingItem item = perpo::make_grounding_item(rng, {/*image_size=*/48});
//   item.expression    // "the small red circle", "the square left of the blue triangle",
//                      // "the largest shape", "the leftmost green shape", ...
//   item.ground_truth  // "[0.21, 0.40, 0.44, 0.63]" (two decimals, rounded outwards)
//
// Expressions need looking: besides plain attributes (size, colour, kind) they use superlatives
// (largest/smallest by area, leftmost/rightmost/topmost/bottommost) and relations to an anchor
// shape (left of, right of, above, below). Every expression is unambiguous by construction: it is
// kept only when the target satisfies it clearly and no other shape satisfies it even loosely:
//   size        "small" and "large" come from two separated bands of shape extent;
//   largest     the target's area is >= 1.5x every other candidate's (smallest: <= 1/1.5x);
//   leftmost    the target lies wholly left of every other candidate's centre;
//   left of A   the target lies wholly left of A's left edge, and every other candidate's centre
//               lies right of A's centre (likewise right of, above, below).
// Shapes never overlap (2 px apart at least), and every shape lies inside the image.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "perpo/image/image.h"
#include "perpo/reward/box.h"
#include "perpo/synth/random.h"
#include "perpo/synth/raster.h"

namespace perpo {

/// The authors' grounding instruction (LLaVA-1.5's RefCOCO prompt); the expression follows it.
inline constexpr const char* kGroundingPromptPrefix =
    "Please provide the bounding box coordinate of the region this sentence describes: ";

enum class SizeClass { kSmall, kLarge };

/// A shape of a grounding scene with the words that describe it.
struct SceneShape {
  ShapeGeometry geometry;
  int colour = 0;  // index into grounding_colour_names()
  SizeClass size = SizeClass::kSmall;
  Rgb rgb;  // the colour actually drawn (the named colour, jittered)
};

struct GroundingScene {
  int width = 0, height = 0;
  Rgb background;
  std::vector<SceneShape> shapes;
};

struct GroundingOptions {
  int image_size = 48;      // image side in pixels, e.g. 48
  int min_shapes = 1;       // shapes per image, e.g. 1 ..
  int max_shapes = 5;       // .. 5
  double noise = 3.0;       // uniform pixel noise amplitude in 8-bit levels, e.g. 3; 0 = none
  double small_min = 0.14;  // small shapes: extent in [small_min, small_max] x image side
  double small_max = 0.22;
  double large_min = 0.30;  // large shapes: extent in [large_min, large_max] x image side
  double large_max = 0.42;
};

/// A referring expression as a structure; `text()` writes it in English.
struct Descriptor {
  std::optional<SizeClass> size;
  std::optional<int> colour;
  std::optional<ShapeKind> kind;
};
enum class Superlative { kLargest, kSmallest, kLeftmost, kRightmost, kTopmost, kBottommost };
enum class Relation { kLeftOf, kRightOf, kAbove, kBelow };

struct ReferringExpression {
  Descriptor target;                       // "the small red circle", "the shape"
  std::optional<Superlative> superlative;  // "the largest ..."
  std::optional<Relation> relation;        // "... left of ..."
  Descriptor anchor;                       // "... the blue triangle" (with a relation only)

  std::string text() const;
};

struct GroundingItem {
  GroundingScene scene;
  RgbImage image;
  int target = 0;  // index into scene.shapes
  ReferringExpression expression_spec;
  std::string expression;    // expression_spec.text()
  Box box;                   // normalised, rounded outwards to two decimals
  std::string ground_truth;  // format_box(box): "[0.21, 0.40, 0.44, 0.63]"
  std::string prompt;        // kGroundingPromptPrefix + expression
};

/// Colour words of the grounding task, by index: red, green, blue, yellow, purple.
const std::vector<std::string>& grounding_colour_names();
/// "circle", "square", "triangle".
const char* shape_kind_name(ShapeKind kind);

/// One random scene, its image, and an unambiguous expression for one of its shapes.
GroundingItem make_grounding_item(SynthRng& rng, const GroundingOptions& options = {});

/// Shapes that satisfy the expression loosely (size/colour/kind as named; largest = larger area
/// than every other candidate; leftmost / left of = centre further left; ...). The anchor of a
/// relation is the one shape matching its descriptor; none or several -> no shape matches.
std::vector<int> loose_matches(const GroundingScene& scene, const ReferringExpression& expr);
/// Whether `shape` satisfies the expression clearly (the margins in the file comment).
bool clearly_names(const GroundingScene& scene, const ReferringExpression& expr, int shape);
/// The generator's acceptance rule: `target` is named clearly and is the only loose match.
bool is_unambiguous(const GroundingScene& scene, const ReferringExpression& expr, int target);

/// The shape's box in normalised coordinates, rounded outwards to 0.01 and clamped to [0, 1].
Box normalised_box(const ShapeGeometry& shape, int width, int height);

}  // namespace perpo
