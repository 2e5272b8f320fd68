// Targeting conditions: GrowthBook's condition language (evalCondition of its SDK
// specification 0.8.0, a MongoDB-like query language), compiled once and evaluated
// against the user's attributes on the routing hot path.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace abtest {

using Json = nlohmann::json;

// A compiled regular expression. The glue implements it with PostgreSQL's regex engine; tests use std::regex.
class CompiledRegex {
 public:
  virtual ~CompiledRegex() = default;
  virtual bool Search(std::string_view subject) const = 0;  // true when the pattern matches anywhere
};

class RegexEngine {
 public:
  virtual ~RegexEngine() = default;
  // nullptr when `pattern` is not a valid regular expression.
  virtual std::shared_ptr<const CompiledRegex> Compile(std::string_view pattern, bool case_insensitive) = 0;
};

// One attribute value as the evaluator reads it: a scalar by value, a string as a view (the glue's points
// into the jsonb: no copy, no allocation), an array or object as JSON (the only values built for
// evaluation). `text` and `json` stay valid until the evaluation ends.
struct AttributeValue {
  enum class Type { kNull, kBoolean, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;    // kBoolean
  double number = 0;       // kNumber
  std::string_view text;   // kString
  const Json* json = nullptr;  // kArray, kObject

  static AttributeValue Of(const Json& value);  // a view of `value`, which must outlive it
  static AttributeValue Boolean(bool value) {
    AttributeValue result;
    result.type = Type::kBoolean;
    result.boolean = value;
    return result;
  }
  static AttributeValue Number(double value) {
    AttributeValue result;
    result.type = Type::kNumber;
    result.number = value;
    return result;
  }
  static AttributeValue String(std::string_view value) {
    AttributeValue result;
    result.type = Type::kString;
    result.text = value;
    return result;
  }
};

// Where a condition reads the user's attributes: looked up lazily by path, so that a condition touching
// 3 of 50 attributes reads only those 3 (the glue looks them up inside a jsonb without converting the rest).
class AttributeSource {
 public:
  virtual ~AttributeSource() = default;
  // The value at `path` (the keys of a dotted path, already split), or nullopt when absent.
  virtual std::optional<AttributeValue> Find(const std::vector<std::string>& path) = 0;

  // Before an evaluation: the top-level attributes the condition may read, shortest first,
  // then bytewise (the order in which jsonb stores an object's keys), so that a source can
  // find them all in one pass instead of one search each. Nothing is read yet that would
  // fail: a source that cannot prepare leaves it to Find.
  virtual void Prepare(const std::vector<std::string>& /*keys*/) {}
  // Find(path) into `value`, for a path whose first key is keys[slot] of the last Prepare;
  // false (and `value` untouched) when absent. Written in place: a value copied right after
  // it was written member by member costs a stalled load (store forwarding), per clause.
  virtual bool FindPrepared(std::size_t /*slot*/, const std::vector<std::string>& path, AttributeValue& value) {
    std::optional<AttributeValue> found = Find(path);
    if (found) value = *found;
    return found.has_value();
  }
};

// An AttributeSource over a JSON document, which must outlive it (tests, ab_eval_condition). Paths descend
// as GrowthBook's getPath does: into objects by key, into arrays by index ("tags.0"), and "tags.length" is
// an array's size.
class JsonAttributes final : public AttributeSource {
 public:
  explicit JsonAttributes(const Json& document) : document_(&document) {}
  std::optional<AttributeValue> Find(const std::vector<std::string>& path) override;

 private:
  const Json* document_;
};

enum class ConditionMode {
  kStrict,   // ab_configure: refuse what GrowthBook would silently treat as false
  kLenient,  // ab_eval_condition: GrowthBook's runtime behaviour, exactly
};

class Condition {
 public:
  Condition();  // the empty condition: matches everyone

  // Compiles once; evaluation never parses JSON again. Refuses (Error kInvalidParameter, naming the place
  // inside the condition) in kStrict mode what GrowthBook would evaluate as false or ignore: unknown
  // operators, ill-typed operands, invalid regular expressions, unknown saved groups, a condition that is
  // not an object. Refuses in both modes (kProgramLimit) a condition nested too deeply or too large.
  // Saved groups ({"id": [values...]}) are resolved here, not at evaluation.
  static Condition Compile(const Json& condition, const Json& saved_groups, RegexEngine& regex, ConditionMode mode);

  // What GrowthBook's evalCondition returns; where JavaScript would throw (e.g. {"$or": null}), false.
  bool Matches(AttributeSource& attributes) const;
  bool empty() const;  // true for {}: the glue skips reading attributes entirely

  struct Node;  // the compiled tree (condition.cpp)

 private:
  Condition(std::shared_ptr<const Node> root, std::shared_ptr<const std::vector<std::string>> keys)
      : root_(std::move(root)), keys_(std::move(keys)) {}

  std::shared_ptr<const Node> root_;  // immutable, so copies share it
  // The top-level attributes its clauses read, in AttributeSource::Prepare's order.
  std::shared_ptr<const std::vector<std::string>> keys_;
};

// The limits of Compile, in both modes.
constexpr int kMaxConditionDepth = 64;       // levels of JSON nesting
constexpr int kMaxConditionValues = 100000;  // JSON values, and clauses derived from them

}  // namespace abtest
