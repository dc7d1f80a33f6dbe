// Synthetic grounding: shapes are drawn where the scene says, the box encloses the named shape's
// pixels (and no more than 1.5 px beyond), and every expression, read back from its English text
// by an interpreter written here independently of the generator, names exactly one shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "perpo/reward/box.h"
#include "perpo/synth/grounding.h"
#include "perpo/synth/raster.h"

namespace perpo {
namespace {

// --- An interpreter of the expression text ---------------------------------------------------
struct Words {
  std::string size, colour, kind;  // "" = not named; kind "shape" = any
};

struct Parsed {
  std::string superlative;  // "" or largest, smallest, leftmost, ...
  Words target;
  std::string relation;  // "" or "left of", "right of", "above", "below"
  Words anchor;
};

Words read_words(std::istringstream& in) {
  Words w;
  std::string word;
  const std::set<std::string> colours(grounding_colour_names().begin(),
                                      grounding_colour_names().end());
  while (in >> word) {
    if (word == "small" || word == "large") {
      w.size = word;
    } else if (colours.count(word)) {
      w.colour = word;
    } else {
      w.kind = word;  // circle, square, triangle or shape: the noun ends the description
      break;
    }
  }
  return w;
}

Parsed parse(const std::string& text) {
  std::istringstream in(text);
  Parsed p;
  std::string word;
  in >> word;
  EXPECT_EQ(word, "the") << text;
  const std::set<std::string> superlatives = {"largest",   "smallest", "leftmost",
                                              "rightmost", "topmost",  "bottommost"};
  const std::streampos mark = in.tellg();
  in >> word;
  if (superlatives.count(word)) {
    p.superlative = word;
  } else {
    in.seekg(mark);
  }
  p.target = read_words(in);
  if (in >> word) {
    if (word == "left" || word == "right") {
      std::string of;
      in >> of;
      EXPECT_EQ(of, "of") << text;
      word += " of";
    }
    p.relation = word;
    in >> word;
    EXPECT_EQ(word, "the") << text;
    p.anchor = read_words(in);
    EXPECT_FALSE(in >> word) << "trailing words in: " << text;
  }
  return p;
}

bool fits(const SceneShape& s, const Words& w) {
  const bool small = s.size == SizeClass::kSmall;
  return (w.size.empty() || (w.size == "small") == small) &&
         (w.colour.empty() || grounding_colour_names()[s.colour] == w.colour) &&
         (w.kind == "shape" || w.kind == shape_kind_name(s.geometry.kind));
}

// Centre of `a` further in the direction than the centre of `b` (the loose reading).
bool further(const ShapeGeometry& a, const ShapeGeometry& b, const std::string& dir) {
  if (dir == "left of" || dir == "leftmost") return a.cx < b.cx;
  if (dir == "right of" || dir == "rightmost") return a.cx > b.cx;
  if (dir == "above" || dir == "topmost") return a.cy < b.cy;
  return a.cy > b.cy;  // below, bottommost
}

// Every shape the text could name under a loose reading.
std::vector<int> readings(const GroundingScene& scene, const std::string& text) {
  const Parsed p = parse(text);
  const int n = static_cast<int>(scene.shapes.size());
  std::vector<int> pool;
  for (int i = 0; i < n; ++i) {
    if (fits(scene.shapes[i], p.target)) pool.push_back(i);
  }
  std::vector<int> out;
  if (!p.relation.empty()) {
    std::vector<int> anchors;
    for (int i = 0; i < n; ++i) {
      if (fits(scene.shapes[i], p.anchor)) anchors.push_back(i);
    }
    EXPECT_EQ(anchors.size(), 1u) << "the anchor is ambiguous in: " << text;
    if (anchors.size() != 1) return pool;
    for (int i : pool) {
      if (i != anchors[0] &&
          further(scene.shapes[i].geometry, scene.shapes[anchors[0]].geometry, p.relation)) {
        out.push_back(i);
      }
    }
    return out;
  }
  if (p.superlative.empty()) return pool;
  for (int i : pool) {
    bool best = true;
    for (int j : pool) {
      const ShapeGeometry &a = scene.shapes[i].geometry, &b = scene.shapes[j].geometry;
      if (i == j) continue;
      if (p.superlative == "largest")
        best = best && a.area() > b.area();
      else if (p.superlative == "smallest")
        best = best && a.area() < b.area();
      else
        best = best && further(a, b, p.superlative);
    }
    if (best) out.push_back(i);
  }
  return out;
}

// --- Tests -------------------------------------------------------------------------------------

GroundingItem item_at(int index, double noise = 0.0) {
  SynthRng rng = SynthRng::for_record(7, "grounding", index);
  GroundingOptions options;
  options.noise = noise;
  return make_grounding_item(rng, options);
}

TEST(SynthGrounding, EveryExpressionNamesExactlyOneShapeAndUsesEveryForm) {
  std::map<std::string, int> forms;
  std::set<int> shape_counts;
  for (int index = 0; index < 400; ++index) {
    const GroundingItem item = item_at(index);
    const std::vector<int> named = readings(item.scene, item.expression);
    ASSERT_EQ(named, std::vector<int>{item.target})
        << item.expression << " (record " << index << ", " << item.scene.shapes.size()
        << " shapes)";
    EXPECT_EQ(item.prompt, std::string(kGroundingPromptPrefix) + item.expression);
    const Parsed p = parse(item.expression);
    forms[!p.relation.empty() ? p.relation : !p.superlative.empty() ? p.superlative : "plain"]++;
    if (!p.target.size.empty()) forms["size word"]++;
    if (!p.target.colour.empty()) forms["colour word"]++;
    shape_counts.insert(static_cast<int>(item.scene.shapes.size()));
  }
  for (const char* form : {"plain", "left of", "right of", "above", "below", "largest", "smallest",
                           "leftmost", "topmost", "size word", "colour word"}) {
    EXPECT_GE(forms[form], 3) << "expression form '" << form << "' (almost) never generated";
  }
  EXPECT_GE(forms["left of"] + forms["right of"] + forms["above"] + forms["below"], 60);
  EXPECT_EQ(shape_counts, (std::set<int>{1, 2, 3, 4, 5}));
}

TEST(SynthGrounding, BoxEnclosesTheNamedShapesPixelsTightly) {
  for (int index = 0; index < 150; ++index) {
    const GroundingItem item = item_at(index);
    const RgbImage& image = item.image;
    const ShapeGeometry& target = item.scene.shapes[item.target].geometry;
    // The box in pixels, read back from the ground-truth text as a model's answer would be.
    const auto boxes = parse_boxes(item.ground_truth);
    ASSERT_EQ(boxes.size(), 1u);
    ASSERT_EQ(boxes[0].note, BoxNote::kOk);
    EXPECT_EQ(item.ground_truth.size(), 24u) << item.ground_truth;  // "[0.21, 0.40, 0.44, 0.63]"
    const double bx1 = boxes[0].box.x1 * image.width, bx2 = boxes[0].box.x2 * image.width;
    const double by1 = boxes[0].box.y1 * image.height, by2 = boxes[0].box.y2 * image.height;
    int ink_x1 = image.width, ink_y1 = image.height, ink_x2 = -1, ink_y2 = -1, ink = 0;
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        const std::uint8_t* p = &image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3];
        if (Rgb{p[0], p[1], p[2]} == item.scene.background) continue;
        // Every drawn pixel belongs to exactly one shape (shapes are apart).
        int owners = 0, owner = -1;
        for (int s = 0; s < static_cast<int>(item.scene.shapes.size()); ++s) {
          const ShapeGeometry& g = item.scene.shapes[s].geometry;
          if (x + 1 > g.x1() && x < g.x2() && y + 1 > g.y1() && y < g.y2()) ++owners, owner = s;
        }
        ASSERT_EQ(owners, 1) << "pixel (" << x << ", " << y << ") of record " << index;
        if (owner != item.target) continue;
        ++ink;
        // Coverage samples sit at 1/8, 3/8, 5/8, 7/8 of a pixel: an inked pixel has one inside
        // the shape, and the box holds the whole shape.
        EXPECT_TRUE(bx1 <= x + 0.875 && x + 0.125 <= bx2 && by1 <= y + 0.875 && y + 0.125 <= by2)
            << "pixel (" << x << ", " << y << ") of the target lies outside the box "
            << item.ground_truth << " (record " << index << ")";
        ink_x1 = std::min(ink_x1, x), ink_x2 = std::max(ink_x2, x + 1);
        ink_y1 = std::min(ink_y1, y), ink_y2 = std::max(ink_y2, y + 1);
      }
    }
    ASSERT_GT(ink, 0.3 * target.area()) << "the target was not drawn (record " << index << ")";
    EXPECT_NEAR(bx1, ink_x1, 1.5) << item.ground_truth;
    EXPECT_NEAR(bx2, ink_x2, 1.5) << item.ground_truth;
    EXPECT_NEAR(by1, ink_y1, 1.5) << item.ground_truth;
    EXPECT_NEAR(by2, ink_y2, 1.5) << item.ground_truth;
  }
}

TEST(SynthGrounding, AcceptanceRuleMatchesTheInterpreter) {
  // A scene built by hand: two red circles side by side and a blue square below them.
  GroundingScene scene{48, 48, {240, 240, 240}, {}};
  auto add = [&](ShapeKind kind, int colour, SizeClass size, double cx, double cy, double e) {
    scene.shapes.push_back({{kind, cx, cy, e}, colour, size, {}});
  };
  add(ShapeKind::kCircle, 0, SizeClass::kSmall, 10, 10, 8);   // 0: left red circle
  add(ShapeKind::kCircle, 0, SizeClass::kSmall, 30, 10, 8);   // 1: right red circle
  add(ShapeKind::kSquare, 2, SizeClass::kLarge, 30, 34, 16);  // 2: blue square, below circle 1
  ReferringExpression red_circle;
  red_circle.target.colour = 0;
  red_circle.target.kind = ShapeKind::kCircle;
  EXPECT_FALSE(is_unambiguous(scene, red_circle, 0));  // two of them
  ReferringExpression leftmost = red_circle;
  leftmost.superlative = Superlative::kLeftmost;
  EXPECT_TRUE(is_unambiguous(scene, leftmost, 0));
  EXPECT_EQ(leftmost.text(), "the leftmost red circle");
  ReferringExpression above = red_circle;
  above.relation = Relation::kAbove;
  above.anchor.kind = ShapeKind::kSquare;
  // Both circles are above the square's centre (loosely), so "above the square" is ambiguous.
  EXPECT_EQ(loose_matches(scene, above), (std::vector<int>{0, 1}));
  EXPECT_FALSE(is_unambiguous(scene, above, 1));
  ReferringExpression left_of = red_circle;
  left_of.relation = Relation::kLeftOf;
  left_of.anchor.kind = ShapeKind::kSquare;
  // Circle 0 (x 6..14) lies wholly left of the square (x 22..38); circle 1's centre (30) does not.
  EXPECT_TRUE(is_unambiguous(scene, left_of, 0));
  EXPECT_EQ(left_of.text(), "the red circle left of the square");
  ReferringExpression largest;
  largest.superlative = Superlative::kLargest;
  EXPECT_TRUE(is_unambiguous(scene, largest, 2));  // 256 px^2 against 50.3
}

TEST(SynthGrounding, NormalisedBoxRoundsOutwards) {
  // Square x 9.6..20.4, y 4.6..15.4 in a 48 px image: x 0.2 .. 0.425, y 0.0958 .. 0.3208.
  // Outwards to hundredths: 0.20 (exact stays), 0.43, 0.09, 0.33.
  EXPECT_EQ(format_box(normalised_box({ShapeKind::kSquare, 15.0, 10.0, 10.8}, 48, 48)),
            "[0.20, 0.09, 0.43, 0.33]");
  // Clamped to the image: a circle of diameter 10 centred at (2, 46) spans -3..7 and 41..51.
  EXPECT_EQ(format_box(normalised_box({ShapeKind::kCircle, 2.0, 46.0, 10.0}, 48, 48)),
            "[0.00, 0.85, 0.15, 1.00]");
}

}  // namespace
}  // namespace perpo
