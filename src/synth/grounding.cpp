// Synthetic grounding scenes and unambiguous referring expressions (see synth/grounding.h).
#include "perpo/synth/grounding.h"

#include <algorithm>
#include <cmath>

#include "perpo/core/error.h"

namespace perpo {

namespace {

struct NamedColour {
  const char* name;
  Rgb rgb;
};
// Well apart from each other and from the light backgrounds (distance > 100 in RGB).
const NamedColour kColours[] = {
    {"red", {215, 45, 45}},     {"green", {40, 160, 70}},   {"blue", {45, 85, 215}},
    {"yellow", {225, 190, 30}}, {"purple", {140, 55, 175}},
};
constexpr int kNumColours = 5;
constexpr int kNumKinds = 3;
constexpr double kGap = 2.0;              // pixels between the bounding squares of two shapes
constexpr double kAreaRatio = 1.5;        // "largest": area >= 1.5x every other candidate's
constexpr double kRelationWeight = 0.35;  // how often a scene gets a relation, when one exists
constexpr double kSuperlativeWeight = 0.3;

std::uint8_t jitter(std::uint8_t value, SynthRng& rng, int amount) {
  return static_cast<std::uint8_t>(std::clamp(value + rng.between(-amount, amount), 0, 255));
}

bool apart(const ShapeGeometry& a, const ShapeGeometry& b) {
  return a.x2() + kGap <= b.x1() || b.x2() + kGap <= a.x1() || a.y2() + kGap <= b.y1() ||
         b.y2() + kGap <= a.y1();
}

GroundingScene make_scene(SynthRng& rng, const GroundingOptions& options) {
  GroundingScene scene;
  scene.width = scene.height = options.image_size;
  const int grey = rng.between(205, 248);
  scene.background = {jitter(grey, rng, 7), jitter(grey, rng, 7), jitter(grey, rng, 7)};
  const int wanted = rng.between(options.min_shapes, options.max_shapes);
  const double side = options.image_size;
  for (int placed = 0, attempts = 0; placed < wanted && attempts < 200; ++attempts) {
    SceneShape shape;
    shape.geometry.kind = static_cast<ShapeKind>(rng.below(kNumKinds));
    shape.colour = rng.below(kNumColours);
    shape.size = rng.chance(0.5) ? SizeClass::kSmall : SizeClass::kLarge;
    const bool small = shape.size == SizeClass::kSmall;
    shape.geometry.extent = side * rng.uniform(small ? options.small_min : options.large_min,
                                               small ? options.small_max : options.large_max);
    const double half = shape.geometry.extent / 2;
    shape.geometry.cx = rng.uniform(half + 1, side - half - 1);
    shape.geometry.cy = rng.uniform(half + 1, side - half - 1);
    const Rgb base = kColours[shape.colour].rgb;
    shape.rgb = {jitter(base.r, rng, 12), jitter(base.g, rng, 12), jitter(base.b, rng, 12)};
    const bool fits = std::all_of(scene.shapes.begin(), scene.shapes.end(), [&](const auto& other) {
      return apart(shape.geometry, other.geometry);
    });
    if (!fits) continue;
    scene.shapes.push_back(shape);
    ++placed;
  }
  PERPO_CHECK(!scene.shapes.empty(), "could not place a single shape in a ", options.image_size,
              " px image; make the shapes smaller");
  return scene;
}

bool matches(const SceneShape& shape, const Descriptor& d) {
  return (!d.size || shape.size == *d.size) && (!d.colour || shape.colour == *d.colour) &&
         (!d.kind || shape.geometry.kind == *d.kind);
}

std::vector<int> matching(const GroundingScene& scene, const Descriptor& d) {
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(scene.shapes.size()); ++i) {
    if (matches(scene.shapes[i], d)) out.push_back(i);
  }
  return out;
}

// Signed distance along the relation's direction: > 0 when `a` lies in that direction of `b`.
// Loose: by centres. Clear: by the facing edges (a wholly beyond b's edge, or beyond its centre
// for superlatives, which compare with candidates instead of an anchor).
double loose_lead(const ShapeGeometry& a, const ShapeGeometry& b, Relation r) {
  switch (r) {
    case Relation::kLeftOf:
      return b.cx - a.cx;
    case Relation::kRightOf:
      return a.cx - b.cx;
    case Relation::kAbove:
      return b.cy - a.cy;
    case Relation::kBelow:
      return a.cy - b.cy;
  }
  return 0;
}
double edge_lead(const ShapeGeometry& a, const ShapeGeometry& b, Relation r) {
  switch (r) {
    case Relation::kLeftOf:
      return b.x1() - a.x2();
    case Relation::kRightOf:
      return a.x1() - b.x2();
    case Relation::kAbove:
      return b.y1() - a.y2();
    case Relation::kBelow:
      return a.y1() - b.y2();
  }
  return 0;
}
double centre_lead(const ShapeGeometry& a, const ShapeGeometry& b, Relation r) {
  switch (r) {
    case Relation::kLeftOf:
      return b.cx - a.x2();
    case Relation::kRightOf:
      return a.x1() - b.cx;
    case Relation::kAbove:
      return b.cy - a.y2();
    case Relation::kBelow:
      return a.y1() - b.cy;
  }
  return 0;
}

Relation direction_of(Superlative s) {
  switch (s) {
    case Superlative::kLeftmost:
      return Relation::kLeftOf;
    case Superlative::kRightmost:
      return Relation::kRightOf;
    case Superlative::kTopmost:
      return Relation::kAbove;
    default:
      return Relation::kBelow;
  }
}

// Whether shape i beats every other candidate for the superlative, clearly or loosely.
bool wins(const GroundingScene& scene, const std::vector<int>& candidates, int i, Superlative s,
          bool clear) {
  const ShapeGeometry& me = scene.shapes[i].geometry;
  for (int j : candidates) {
    if (j == i) continue;
    const ShapeGeometry& other = scene.shapes[j].geometry;
    bool ok;
    if (s == Superlative::kLargest) {
      ok = clear ? me.area() >= kAreaRatio * other.area() : me.area() > other.area();
    } else if (s == Superlative::kSmallest) {
      ok = clear ? kAreaRatio * me.area() <= other.area() : me.area() < other.area();
    } else {
      const Relation r = direction_of(s);
      ok = clear ? centre_lead(me, other, r) >= 0 : loose_lead(me, other, r) > 0;
    }
    if (!ok) return false;
  }
  return true;
}

std::optional<int> unique_anchor(const GroundingScene& scene, const ReferringExpression& expr) {
  const std::vector<int> anchors = matching(scene, expr.anchor);
  if (anchors.size() != 1) return std::nullopt;
  return anchors[0];
}

bool satisfies(const GroundingScene& scene, const ReferringExpression& expr, int i, bool clear) {
  if (!matches(scene.shapes[i], expr.target)) return false;
  if (expr.superlative) {
    return wins(scene, matching(scene, expr.target), i, *expr.superlative, clear);
  }
  if (expr.relation) {
    const std::optional<int> anchor = unique_anchor(scene, expr);
    if (!anchor || *anchor == i) return false;
    const ShapeGeometry& a = scene.shapes[*anchor].geometry;
    const ShapeGeometry& me = scene.shapes[i].geometry;
    return clear ? edge_lead(me, a, *expr.relation) >= 0 : loose_lead(me, a, *expr.relation) > 0;
  }
  return true;
}

// The 8 descriptors of shape i made of its size, colour and kind (each named or left out).
std::vector<Descriptor> descriptors_of(const SceneShape& shape, bool with_size) {
  std::vector<Descriptor> out;
  for (int mask = 0; mask < 8; ++mask) {
    if ((mask & 1) && !with_size) continue;
    Descriptor d;
    if (mask & 1) d.size = shape.size;
    if (mask & 2) d.colour = shape.colour;
    if (mask & 4) d.kind = shape.geometry.kind;
    out.push_back(d);
  }
  return out;
}

// The shortest descriptor of `shape` that matches it alone (fewest words; ties: random).
std::optional<Descriptor> shortest_unique(const GroundingScene& scene, int shape, SynthRng& rng) {
  std::vector<Descriptor> best;
  int best_words = 99;
  for (const Descriptor& d : descriptors_of(scene.shapes[shape], true)) {
    if (matching(scene, d).size() != 1) continue;
    const int words = !!d.size + !!d.colour + !!d.kind;
    if (words < best_words) best.clear(), best_words = words;
    if (words == best_words) best.push_back(d);
  }
  if (best.empty()) return std::nullopt;
  return rng.pick(best);
}

// Every expression of the three forms that names `target` unambiguously.
struct Candidates {
  std::vector<ReferringExpression> attribute, superlative, relation;
};

Candidates candidates_for(const GroundingScene& scene, int target, SynthRng& rng) {
  Candidates out;
  const SceneShape& shape = scene.shapes[target];
  for (const Descriptor& d : descriptors_of(shape, true)) {
    ReferringExpression e;
    e.target = d;
    if (is_unambiguous(scene, e, target)) out.attribute.push_back(e);
  }
  for (const Descriptor& d : descriptors_of(shape, false)) {
    if (matching(scene, d).size() < 2) continue;  // a superlative or relation must be needed
    for (int s = 0; s < 6; ++s) {
      ReferringExpression e;
      e.target = d;
      e.superlative = static_cast<Superlative>(s);
      if (is_unambiguous(scene, e, target)) out.superlative.push_back(e);
    }
    for (int anchor = 0; anchor < static_cast<int>(scene.shapes.size()); ++anchor) {
      if (anchor == target) continue;
      const std::optional<Descriptor> anchor_words = shortest_unique(scene, anchor, rng);
      if (!anchor_words) continue;
      for (int r = 0; r < 4; ++r) {
        ReferringExpression e;
        e.target = d;
        e.relation = static_cast<Relation>(r);
        e.anchor = *anchor_words;
        if (is_unambiguous(scene, e, target)) out.relation.push_back(e);
      }
    }
  }
  return out;
}

std::string descriptor_text(const Descriptor& d, const char* superlative = nullptr) {
  std::string text = "the ";
  if (superlative) text += std::string(superlative) + " ";
  if (d.size) text += *d.size == SizeClass::kSmall ? "small " : "large ";
  if (d.colour) text += kColours[*d.colour].name + std::string(" ");
  text += d.kind ? shape_kind_name(*d.kind) : "shape";
  return text;
}

}  // namespace

const std::vector<std::string>& grounding_colour_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& c : kColours) out.push_back(c.name);
    return out;
  }();
  return names;
}

const char* shape_kind_name(ShapeKind kind) {
  switch (kind) {
    case ShapeKind::kCircle:
      return "circle";
    case ShapeKind::kSquare:
      return "square";
    case ShapeKind::kTriangle:
      return "triangle";
  }
  return "?";
}

std::string ReferringExpression::text() const {
  static const char* kSuperlatives[] = {"largest",   "smallest", "leftmost",
                                        "rightmost", "topmost",  "bottommost"};
  static const char* kRelations[] = {"left of", "right of", "above", "below"};
  if (superlative) return descriptor_text(target, kSuperlatives[static_cast<int>(*superlative)]);
  std::string out = descriptor_text(target);
  if (relation) {
    out +=
        std::string(" ") + kRelations[static_cast<int>(*relation)] + " " + descriptor_text(anchor);
  }
  return out;
}

std::vector<int> loose_matches(const GroundingScene& scene, const ReferringExpression& expr) {
  std::vector<int> out;
  for (int i = 0; i < static_cast<int>(scene.shapes.size()); ++i) {
    if (satisfies(scene, expr, i, /*clear=*/false)) out.push_back(i);
  }
  return out;
}

bool clearly_names(const GroundingScene& scene, const ReferringExpression& expr, int shape) {
  return satisfies(scene, expr, shape, /*clear=*/true);
}

bool is_unambiguous(const GroundingScene& scene, const ReferringExpression& expr, int target) {
  return clearly_names(scene, expr, target) &&
         loose_matches(scene, expr) == std::vector<int>{target};
}

Box normalised_box(const ShapeGeometry& shape, int width, int height) {
  auto down = [](double v) { return std::clamp(std::floor(v * 100 + 1e-9) / 100, 0.0, 1.0); };
  auto up = [](double v) { return std::clamp(std::ceil(v * 100 - 1e-9) / 100, 0.0, 1.0); };
  return {down(shape.x1() / width), down(shape.y1() / height), up(shape.x2() / width),
          up(shape.y2() / height)};
}

GroundingItem make_grounding_item(SynthRng& rng, const GroundingOptions& options) {
  PERPO_CHECK_INPUT(options.image_size >= 16,
                    "synthetic grounding images need at least 16 px, got ", options.image_size);
  PERPO_CHECK_INPUT(1 <= options.min_shapes && options.min_shapes <= options.max_shapes,
                    "synthetic grounding needs 1 <= min_shapes <= max_shapes, got ",
                    options.min_shapes, " and ", options.max_shapes);
  GroundingItem item;
  // A scene where no shape can be named unambiguously (e.g. two alike shapes side by side with
  // nothing else) is drawn again; targets are tried in random order.
  Candidates candidates;
  for (int attempt = 0; attempt < 100; ++attempt) {
    item.scene = make_scene(rng, options);
    std::vector<int> order(item.scene.shapes.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    rng.shuffle(order);
    for (int target : order) {
      candidates = candidates_for(item.scene, target, rng);
      if (!candidates.attribute.empty() || !candidates.superlative.empty() ||
          !candidates.relation.empty()) {
        item.target = target;
        break;
      }
      candidates = {};
    }
    if (!candidates.attribute.empty() || !candidates.superlative.empty() ||
        !candidates.relation.empty()) {
      break;
    }
  }
  // Prefer expressions that need looking: a relation or a superlative when the scene has one.
  const double roll = rng.uniform();
  const std::vector<ReferringExpression>* pool = &candidates.attribute;
  if (!candidates.relation.empty() && (roll < kRelationWeight || pool->empty())) {
    pool = &candidates.relation;
  } else if (!candidates.superlative.empty() &&
             (roll < kRelationWeight + kSuperlativeWeight || pool->empty())) {
    pool = &candidates.superlative;
  }
  PERPO_CHECK(!pool->empty(), "found no scene with an unambiguous expression in 100 attempts");
  item.expression_spec = rng.pick(*pool);
  item.expression = item.expression_spec.text();
  item.prompt = std::string(kGroundingPromptPrefix) + item.expression;
  const SceneShape& target = item.scene.shapes[item.target];
  item.box = normalised_box(target.geometry, item.scene.width, item.scene.height);
  item.ground_truth = format_box(item.box);

  Canvas canvas(item.scene.width, item.scene.height, item.scene.background);
  for (const SceneShape& shape : item.scene.shapes) {
    canvas.fill_coverage(shape_coverage(shape.geometry), shape.rgb);
  }
  canvas.add_noise(rng, options.noise);
  item.image = canvas.to_image();
  return item;
}

}  // namespace perpo
