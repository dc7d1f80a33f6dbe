// The field table: Config::visit() is walked once to list every field (dotted path, pointer,
// comment, allowed values). Loading, overrides, dumping and comparison all work on that table.
#include "perpo/config/config_io.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <variant>

#include "perpo/core/error.h"
#include "perpo/core/input_file.h"
#include "perpo/core/log.h"
#include "perpo/core/strings.h"

namespace perpo {
namespace {

using FieldPtr = std::variant<bool*, int*, std::uint64_t*, double*, std::string*,
                              std::vector<double>*, std::vector<std::string>*>;

struct Field {
  std::string path;  // "optim.lr"
  std::string comment;
  FieldPtr ptr;
  std::vector<std::string> choices;  // allowed values of a string field; empty = any
  int depth = 0;
};

struct Section {
  std::string path;  // "model.lora"
  std::string comment;
  int depth = 0;
};

// An entry of the walk, in declaration order: a section header or a field.
struct Entry {
  bool is_section = false;
  std::size_t index = 0;
};

class TableBuilder {
 public:
  std::vector<Field> fields;
  std::vector<Section> sections;
  std::vector<Entry> order;

  template <typename T>
  void field(const char* name, T& value, const char* comment) {
    fields.push_back({prefixed(name), comment, FieldPtr(&value), {}, depth_});
    order.push_back({false, fields.size() - 1});
  }
  void choice(const char* name, std::string& value, std::vector<std::string> choices,
              const char* comment) {
    fields.push_back({prefixed(name), comment, FieldPtr(&value), std::move(choices), depth_});
    order.push_back({false, fields.size() - 1});
  }
  template <typename S>
  void section(const char* name, S& value, const char* comment) {
    sections.push_back({prefixed(name), comment, depth_});
    order.push_back({true, sections.size() - 1});
    std::string saved = prefix_;
    prefix_ = prefixed(name) + ".";
    ++depth_;
    value.visit(*this);
    --depth_;
    prefix_ = saved;
  }

 private:
  std::string prefixed(const char* name) const { return prefix_ + name; }
  std::string prefix_;
  int depth_ = 0;
};

TableBuilder table_of(Config& config) {
  TableBuilder builder;
  config.visit(builder);
  return builder;
}

std::vector<std::string> all_paths(const TableBuilder& table) {
  std::vector<std::string> paths;
  for (const auto& f : table.fields) paths.push_back(f.path);
  for (const auto& s : table.sections) paths.push_back(s.path);
  return paths;
}

// "did you mean ...": nearest full key, else a key elsewhere with the same last component.
std::string suggestion_for(const std::string& key, const TableBuilder& table) {
  auto paths = all_paths(table);
  if (auto best = closest_match(key, paths)) return "did you mean '" + *best + "'?";
  // The same name under another section ("train.lr" -> "optim.lr"), exact before near.
  std::string leaf = key.substr(key.rfind('.') + 1);
  for (std::size_t tolerance : {0u, 1u}) {
    for (const auto& path : paths) {
      std::string other_leaf = path.substr(path.rfind('.') + 1);
      if (leaf.size() >= 2 + tolerance && edit_distance_bytes(leaf, other_leaf) <= tolerance) {
        return "did you mean '" + path + "'?";
      }
    }
  }
  return "run 'perpo config show' to list every key";
}

std::string where(const std::string& source, const YAML::Node& node) {
  if (source.empty()) return "";
  auto mark = node.Mark();
  if (mark.line >= 0) return source + ":" + std::to_string(mark.line + 1) + ": ";
  return source + ": ";
}

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

// Number parsing without yaml-cpp's leniency: the whole scalar must be the number.
bool parse_int64(const std::string& text, long long& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_double(const std::string& text, double& out) {
  std::string t = text;
  if (t == ".inf" || t == ".Inf" || t == "+.inf") {
    out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (t == "-.inf" || t == "-.Inf") {
    out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (t == ".nan" || t == ".NaN") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  const char* begin = t.data();
  const char* end = begin + t.size();
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_bool(const std::string& text, bool& out) {
  static const std::set<std::string> kTrue = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE", "no", "No", "off", "Off"};
  if (kTrue.count(text)) {
    out = true;
    return true;
  }
  if (kFalse.count(text)) {
    out = false;
    return true;
  }
  return false;
}

// Sets one field from a YAML node, with the expected type named in the error.
void set_field(const Field& field, const YAML::Node& node, const std::string& source) {
  std::string at = where(source, node);
  auto fail = [&](const char* expected) {
    return input_error(at, "key '", field.path, "' must be ", expected, ", got ",
                       scalar_text(node));
  };
  auto scalar = [&](const char* expected) -> std::string {
    if (!node.IsScalar()) throw fail(expected);
    return node.Scalar();
  };
  std::visit(
      [&](auto* ptr) {
        using T = std::remove_pointer_t<decltype(ptr)>;
        if constexpr (std::is_same_v<T, bool>) {
          if (!parse_bool(scalar("true or false"), *ptr)) throw fail("true or false");
        } else if constexpr (std::is_same_v<T, int>) {
          long long value = 0;
          if (!parse_int64(scalar("an integer"), value) ||
              value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
            throw fail("an integer");
          }
          *ptr = static_cast<int>(value);
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          std::string text = scalar("a non-negative integer");
          std::uint64_t value = 0;
          auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
          if (ec != std::errc() || p != text.data() + text.size())
            throw fail("a non-negative integer");
          *ptr = value;
        } else if constexpr (std::is_same_v<T, double>) {
          if (!parse_double(scalar("a number"), *ptr)) throw fail("a number");
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (node.IsNull()) {
            *ptr = "";
          } else {
            *ptr = scalar("a string");
          }
          if (!field.choices.empty() &&
              std::find(field.choices.begin(), field.choices.end(), *ptr) == field.choices.end()) {
            auto error = input_error(at, "key '", field.path, "' must be one of ",
                                     join(field.choices, ", "), "; got '", *ptr, "'");
            if (auto best = closest_match(*ptr, field.choices))
              error.hint("did you mean '" + *best + "'?");
            throw error;
          }
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          if (!node.IsSequence()) throw fail("a list of numbers, e.g. [0.5, 0.5, 0.5]");
          std::vector<double> values;
          for (const auto& item : node) {
            double value = 0;
            if (!item.IsScalar() || !parse_double(item.Scalar(), value)) {
              throw fail("a list of numbers, e.g. [0.5, 0.5, 0.5]");
            }
            values.push_back(value);
          }
          *ptr = std::move(values);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          if (node.IsScalar()) {  // a single name is a one-element list
            *ptr = {node.Scalar()};
            return;
          }
          if (!node.IsSequence() && !node.IsNull()) throw fail("a list of strings, e.g. [a, b]");
          std::vector<std::string> values;
          for (const auto& item : node) {
            if (!item.IsScalar()) throw fail("a list of strings, e.g. [a, b]");
            values.push_back(item.Scalar());
          }
          *ptr = std::move(values);
        }
      },
      field.ptr);
}

// Keys (or sections) of earlier perpo versions that are gone: a config file that still holds
// them (the config.yaml of an older run, read again by --resume) loads with a warning.
const std::map<std::string, std::string>& retired_keys() {
  static const std::map<std::string, std::string> keys = {
      {"data.synthetic",
       "it was never read; perpo demo and perpo data synth have their own settings"}};
  return keys;
}

void merge_node(TableBuilder& table, const YAML::Node& node, const std::string& prefix,
                const std::string& source) {
  std::map<std::string, const Field*> fields;
  std::set<std::string> sections;
  for (const auto& f : table.fields) fields[f.path] = &f;
  for (const auto& s : table.sections) sections.insert(s.path);

  std::map<std::string, int> seen;  // key -> line it was first set on (0-based; -1 unknown)
  for (const auto& item : node) {
    const YAML::Node& key_node = item.first;
    const YAML::Node& value = item.second;
    if (!key_node.IsScalar()) {
      throw input_error(where(source, key_node), "keys must be plain names under '",
                        prefix.empty() ? "(top level)" : prefix, "'");
    }
    std::string path = prefix.empty() ? key_node.Scalar() : prefix + "." + key_node.Scalar();
    // YAML forbids a key twice in one mapping; yaml-cpp would silently keep one of them.
    if (auto [first, inserted] = seen.emplace(key_node.Scalar(), key_node.Mark().line); !inserted) {
      throw input_error(where(source, key_node), "duplicate key '", path, "'",
                        first->second >= 0
                            ? " (first set on line " + std::to_string(first->second + 1) + ")"
                            : "")
          .hint("keep one of the two");
    }
    if (sections.count(path)) {
      if (value.IsNull()) continue;  // "section:" with nothing under it
      if (!value.IsMap()) {
        throw input_error(where(source, value), "'", path,
                          "' is a section and must hold keys, got ", scalar_text(value));
      }
      merge_node(table, value, path, source);
    } else if (auto it = fields.find(path); it != fields.end()) {
      set_field(*it->second, value, source);
    } else if (auto retired = retired_keys().find(path); retired != retired_keys().end()) {
      PERPO_LOG_WARN(where(source, key_node), ": '", path, "' is no longer a key (",
                     retired->second, "); ignored");
    } else {
      throw input_error(where(source, key_node), "unknown key '", path, "'")
          .hint(suggestion_for(path, table));
    }
  }
}

// Shortest text that reads back as the same double.
std::string format_double(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  char buffer[64];
  auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, ptr);
  // "1" would read back as an integer in YAML tools; keep it visibly a float.
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string value_text(const FieldPtr& ptr) {
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, bool>) {
          return *p ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::uint64_t>) {
          return std::to_string(*p);
        } else if constexpr (std::is_same_v<T, double>) {
          return format_double(*p);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return quote(*p);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          std::vector<std::string> items;
          for (double v : *p) items.push_back(format_double(v));
          return "[" + join(items, ", ") + "]";
        } else {
          std::vector<std::string> items;
          for (const auto& v : *p) items.push_back(quote(v));
          return "[" + join(items, ", ") + "]";
        }
      },
      ptr);
}

// 1-based line of the "---" that starts a second document: the first "---" after content, or the
// second "---" (0 when none is found, e.g. a second document after "...").
int second_document_line(const std::string& text) {
  int line = 0, markers = 0;
  bool content = false;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view row(text.data() + start, end - start);
    ++line;
    const bool marker = row.rfind("---", 0) == 0 &&
                        (row.size() == 3 || row[3] == ' ' || row[3] == '\t' || row[3] == '\r');
    if (marker) {
      if (content || ++markers == 2) return line;
    } else if (!trim(row).empty() && row.front() != '#' && row.front() != '%') {
      content = true;
    }
    start = end + 1;
  }
  return 0;
}

// Counts documents: the parser's events are not needed, only where each document starts.
struct DocumentCounter : YAML::EventHandler {
  int documents = 0;
  YAML::Mark second;  // where the second document starts
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2) second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// 0 when `text` holds at most one YAML document, else the 1-based line where the second starts.
// YAML::LoadAll never returns on some invalid input ("{a: 0}, b}}" with yaml-cpp 0.7: found by
// fuzz/yaml_config.cpp), so the parser is driven here for two documents at most. Throws
// YAML::Exception for invalid YAML in them.
int second_document_start(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  if (!parser.HandleNextDocument(counter) || !parser.HandleNextDocument(counter)) return 0;
  const int line = second_document_line(text);
  return line > 0 ? line : counter.second.line + 1;
}

std::string leaf(const std::string& path) { return path.substr(path.rfind('.') + 1); }

}  // namespace

void merge_yaml(Config& config, const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  int second_line = 0;
  try {
    second_line = second_document_start(yaml_text);
    if (second_line == 0) root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw input_error(source, ":", e.mark.line + 1, ": not valid YAML: ", e.msg);
  }
  if (second_line > 0) {
    throw input_error(source, ":", second_line,
                      ": a second YAML document (or text after the end of the first) starts here; "
                      "a config file holds one")
        .hint("remove the '---' line and merge the two parts, or split them into two files");
  }
  if (root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) {
    throw input_error(source, ": a config file must be a mapping of sections (model:, loss:, ...)");
  }
  auto table = table_of(config);
  merge_node(table, root, "", source);
}

void apply_override(Config& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw input_error("override '", assignment, "' is not of the form key=value")
        .hint("e.g. optim.lr=1e-5");
  }
  std::string key(trim(assignment.substr(0, eq)));
  std::string value_text_in = assignment.substr(eq + 1);
  auto table = table_of(config);
  for (const auto& s : table.sections) {
    if (s.path == key) {
      throw input_error("override '", assignment, "': '", key, "' is a section, not a key")
          .hint("set one of its keys, e.g. " + key + ".<name>=value");
    }
  }
  const Field* field = nullptr;
  for (const auto& f : table.fields) {
    if (f.path == key) field = &f;
  }
  if (!field) {
    throw input_error("unknown key '", key, "' in override '", assignment, "'")
        .hint(suggestion_for(key, table));
  }
  YAML::Node node;
  if (std::holds_alternative<std::string*>(field->ptr)) {
    // Strings are taken verbatim (so "run.dir=1e5" or "x=yes" stay strings), unless quoted.
    std::string raw(trim(value_text_in));
    if (raw.size() >= 2 && (raw.front() == '"' || raw.front() == '\'') &&
        raw.back() == raw.front()) {
      try {
        node = YAML::Load(raw);
      } catch (const YAML::Exception& e) {
        throw input_error("override '", assignment, "': bad quoted string: ", e.msg);
      }
    } else {
      node = YAML::Node(raw);
    }
  } else {
    try {
      node = YAML::Load(value_text_in);
    } catch (const YAML::Exception& e) {
      throw input_error("override '", assignment, "': value is not valid YAML: ", e.msg);
    }
  }
  set_field(*field, node, "");
}

Config load_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  Config config;
  if (!file.empty()) merge_yaml(config, read_input_file(file), file.string());
  for (const auto& assignment : overrides) apply_override(config, assignment);
  validate(config);
  return config;
}

std::string dump_config(const Config& config_in, bool every_section) {
  Config config = config_in;  // the table needs non-const pointers; nothing is modified
  auto table = table_of(config);
  // The demo: section only where it is not at its defaults (perpo demo's chain configs), so that
  // the config.yaml of every other run holds only what its command reads.
  std::string omitted;  // "demo." or empty
  if (!every_section) {
    const auto values = flatten_config(config);
    const auto defaults = flatten_config(Config{});
    bool at_defaults = true;
    for (const auto& [key, value] : values) {
      if (starts_with(key, "demo.") && defaults.at(key) != value) at_defaults = false;
    }
    if (at_defaults) omitted = "demo.";
  }
  auto is_omitted = [&](const std::string& path) {
    return !omitted.empty() && (path + ".").compare(0, omitted.size(), omitted) == 0;
  };
  std::string out;
  for (const auto& entry : table.order) {
    const std::string& path =
        entry.is_section ? table.sections[entry.index].path : table.fields[entry.index].path;
    if (is_omitted(path)) continue;
    if (entry.is_section) {
      const auto& s = table.sections[entry.index];
      std::string indent(2 * s.depth, ' ');
      if (s.depth == 0 && !out.empty()) out += "\n";
      out += indent + leaf(s.path) + ":  # " + s.comment + "\n";
    } else {
      const auto& f = table.fields[entry.index];
      std::string indent(2 * f.depth, ' ');
      std::string comment = f.comment;
      if (!f.choices.empty()) comment += " (" + join(f.choices, " | ") + ")";
      out += indent + leaf(f.path) + ": " + value_text(f.ptr) + "  # " + comment + "\n";
    }
  }
  return out;
}

std::vector<std::string> config_keys() {
  Config config;
  auto table = table_of(config);
  std::vector<std::string> keys;
  for (const auto& f : table.fields) keys.push_back(f.path);
  return keys;
}

bool configs_equal(const Config& a_in, const Config& b_in) {
  Config a = a_in, b = b_in;
  auto ta = table_of(a), tb = table_of(b);
  for (std::size_t i = 0; i < ta.fields.size(); ++i) {
    bool same = std::visit(
        [&](auto* pa) {
          using T = std::remove_pointer_t<decltype(pa)>;
          auto* pb = std::get<T*>(tb.fields[i].ptr);
          if constexpr (std::is_same_v<T, double>) {
            return *pa == *pb || (std::isnan(*pa) && std::isnan(*pb));
          } else {
            return *pa == *pb;
          }
        },
        ta.fields[i].ptr);
    if (!same) return false;
  }
  return true;
}

namespace {

// Walks Config::visit and records every field as text.
struct FlattenVisitor {
  std::map<std::string, std::string>* out;
  std::string prefix;

  template <typename T>
  static std::string text(const T& value) {
    std::ostringstream s;
    if constexpr (std::is_same_v<T, bool>) {
      s << (value ? "true" : "false");
    } else if constexpr (std::is_same_v<T, std::vector<std::string>> ||
                         std::is_same_v<T, std::vector<double>>) {
      s << "[";
      for (std::size_t i = 0; i < value.size(); ++i) s << (i ? ", " : "") << text(value[i]);
      s << "]";
    } else if constexpr (std::is_same_v<T, double>) {
      char buffer[64];
      auto end = std::to_chars(buffer, buffer + sizeof(buffer), value).ptr;  // shortest exact
      s << std::string(buffer, end);
    } else {
      s << value;
    }
    return s.str();
  }
  template <typename T>
  void field(const char* name, T& value, const char*) {
    (*out)[prefix + name] = text(value);
  }
  void choice(const char* name, std::string& value, std::vector<std::string>, const char*) {
    (*out)[prefix + name] = value;
  }
  template <typename S>
  void section(const char* name, S& value, const char*) {
    FlattenVisitor inner{out, prefix + name + "."};
    value.visit(inner);
  }
};

}  // namespace

std::map<std::string, std::string> flatten_config(const Config& config) {
  std::map<std::string, std::string> out;
  Config copy = config;
  FlattenVisitor visitor{&out, ""};
  copy.visit(visitor);
  return out;
}

std::vector<NumericField> numeric_fields(const Config& config) {
  Config copy = config;
  TableBuilder table = table_of(copy);
  std::vector<NumericField> out;
  for (const Field& field : table.fields) {
    std::visit(
        [&](auto* ptr) {
          using T = std::remove_pointer_t<decltype(ptr)>;
          if constexpr (std::is_same_v<T, int> || std::is_same_v<T, std::uint64_t>) {
            out.push_back({field.path, {static_cast<double>(*ptr)}, true});
          } else if constexpr (std::is_same_v<T, double>) {
            out.push_back({field.path, {*ptr}, false});
          } else if constexpr (std::is_same_v<T, std::vector<double>>) {
            out.push_back({field.path, *ptr, false});
          }
        },
        field.ptr);
  }
  return out;
}

}  // namespace perpo
