// GrowthBook's evalCondition, compiled. Evaluation follows the JavaScript of the SDK to the letter,
// coercions included (String(value), value * 1, <, ===, toLowerCase), because a condition written and
// tested in GrowthBook must target the same users here.
#include "core/condition.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "core/error.hpp"

namespace abtest {
namespace {

// JavaScript would throw a TypeError here (Object.entries(null) and the like); GrowthBook's evalCondition
// lets it escape, so the user is not targeted.
struct JsTypeError {};

using Value = AttributeValue;
using ValueType = AttributeValue::Type;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------------------------------------
// Text of one comparison, on the stack unless long: evaluation does not allocate for short strings.

class SmallText {
 public:
  SmallText() = default;
  SmallText(const SmallText&) = delete;
  SmallText& operator=(const SmallText&) = delete;

  void Append(std::string_view text) {
    if (text.empty()) return;
    if (!heap_ && size_ + text.size() <= sizeof inline_) {
      std::memcpy(inline_ + size_, text.data(), text.size());
      size_ += text.size();
      return;
    }
    if (!heap_) heap_.emplace(inline_, size_);
    heap_->append(text);
  }
  void Append(char c) { Append(std::string_view(&c, 1)); }
  std::string_view view() const { return heap_ ? std::string_view(*heap_) : std::string_view(inline_, size_); }

 private:
  char inline_[120];
  std::size_t size_ = 0;
  std::optional<std::string> heap_;
};

// ---------------------------------------------------------------------------------------------------------
// Short strings as words. Attribute values compared with a condition's strings are mostly short (country
// codes, systems, plans): up to 8 bytes, a string is one word made of two overlapping loads (none past its
// end), the same word for the same bytes, and two strings of the same length are equal when their words
// are. A comparison of words takes no call to memcmp and no loop over bytes.

constexpr std::size_t kShortText = 8;

template <typename Word>
Word LoadWord(const char* p) {
  Word word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// The word of a text of at most kShortText bytes.
std::uint64_t ShortWord(std::string_view text) {
  const char* p = text.data();
  std::size_t n = text.size();
  if (n >= 4) return LoadWord<std::uint32_t>(p) | std::uint64_t{LoadWord<std::uint32_t>(p + n - 4)} << 32;
  if (n >= 2) return LoadWord<std::uint16_t>(p) | std::uint64_t{LoadWord<std::uint16_t>(p + n - 2)} << 16;
  return n == 1 ? static_cast<unsigned char>(p[0]) : 0;
}

// A string of the condition, compared for equality with attribute values.
struct ConstantText {
  std::string text;
  std::uint64_t word = 0;  // ShortWord(text), when it is short

  ConstantText() = default;
  explicit ConstantText(std::string value) : text(std::move(value)) {
    if (text.size() <= kShortText) word = ShortWord(text);
  }
  bool Equals(std::string_view value) const {
    if (value.size() != text.size()) return false;
    if (value.size() <= kShortText) return ShortWord(value) == word;
    return std::memcmp(value.data(), text.data(), value.size()) == 0;
  }
};

// ---------------------------------------------------------------------------------------------------------
// UTF-8. Invalid bytes (the glue never passes any) read as single code points of their own value.

char32_t DecodeUtf8(std::string_view text, std::size_t& i) {
  unsigned char lead = static_cast<unsigned char>(text[i]);
  int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > text.size()) return text[i++] & 0xFF;
  char32_t c = length == 1 ? lead : lead & (0x7F >> length);
  for (int k = 1; k < length; ++k) {
    unsigned char next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xC0) != 0x80) return text[i++] & 0xFF;
    c = (c << 6) | (next & 0x3F);
  }
  i += length;
  return c;
}

// The code point that ends at `i`, moving `i` to its start.
char32_t DecodeUtf8Before(std::string_view text, std::size_t& i) {
  do --i;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80);
  std::size_t start = i;
  return DecodeUtf8(text, start);
}

void AppendUtf8(char32_t c, SmallText& out) {
  char bytes[4];
  std::size_t n;
  if (c < 0x80) {
    bytes[0] = static_cast<char>(c), n = 1;
  } else if (c < 0x800) {
    bytes[0] = static_cast<char>(0xC0 | (c >> 6)), bytes[1] = static_cast<char>(0x80 | (c & 0x3F)), n = 2;
  } else if (c < 0x10000) {
    bytes[0] = static_cast<char>(0xE0 | (c >> 12)), bytes[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    bytes[2] = static_cast<char>(0x80 | (c & 0x3F)), n = 3;
  } else {
    bytes[0] = static_cast<char>(0xF0 | (c >> 18)), bytes[1] = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    bytes[2] = static_cast<char>(0x80 | ((c >> 6) & 0x3F)), bytes[3] = static_cast<char>(0x80 | (c & 0x3F)), n = 4;
  }
  out.Append(std::string_view(bytes, n));
}

// JavaScript orders strings by UTF-16 code units, UTF-8 bytes order by code point: the two differ only
// between U+E000..U+FFFF (lead byte EE or EF) and the supplementary planes, whose surrogates sort lower.
int CompareJsStrings(std::string_view a, std::string_view b) {
  auto [in_a, in_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (in_a == a.end()) return in_b == b.end() ? 0 : -1;
  if (in_b == b.end()) return 1;
  std::size_t i = static_cast<std::size_t>(in_a - a.begin());
  while (i > 0 && (static_cast<unsigned char>(a[i]) & 0xC0) == 0x80) --i;  // same prefix: same start in b
  unsigned char lead_a = static_cast<unsigned char>(a[i]), lead_b = static_cast<unsigned char>(b[i]);
  bool high_a = lead_a == 0xEE || lead_a == 0xEF, high_b = lead_b == 0xEE || lead_b == 0xEF;
  if (high_a && lead_b >= 0xF0) return 1;
  if (high_b && lead_a >= 0xF0) return -1;
  return static_cast<unsigned char>(*in_a) < static_cast<unsigned char>(*in_b) ? -1 : 1;
}

// Calls visit(index, unit) for each UTF-16 code unit of `text` (what JavaScript's Object.entries yields
// for a string): `unit` is the character as UTF-8, or nullopt for half of a surrogate pair, which no
// UTF-8 text can equal.
template <typename Visit>
void ForEachUtf16Unit(std::string_view text, Visit visit) {
  std::size_t index = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t start = i;
    if (DecodeUtf8(text, i) >= 0x10000) {
      visit(index++, std::optional<std::string_view>());
      visit(index++, std::optional<std::string_view>());
    } else {
      visit(index++, std::optional<std::string_view>(text.substr(start, i - start)));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// String.prototype.toLowerCase: Unicode's full lowercase mapping, language-insensitive. The table holds the
// one-to-one mappings as runs (every `stride`-th code point from `first` to `last` maps to itself + delta);
// U+0130 and the final sigma are the special cases.

struct CaseRun {
  char32_t first, last;
  std::int32_t delta;
  std::uint8_t stride;
};

// Generated from Node.js's String.prototype.toLowerCase (V8 with ICU 78, Unicode 17): one-to-one mappings.
constexpr CaseRun kLowercaseRuns[] = {
    {0x41, 0x5A, 32, 1},         {0xC0, 0xD6, 32, 1},         {0xD8, 0xDE, 32, 1},         {0x100, 0x12E, 1, 2},
    {0x132, 0x136, 1, 2},        {0x139, 0x147, 1, 2},        {0x14A, 0x176, 1, 2},        {0x178, 0x178, -121, 1},
    {0x179, 0x17D, 1, 2},        {0x181, 0x181, 210, 1},      {0x182, 0x184, 1, 2},        {0x186, 0x186, 206, 1},
    {0x187, 0x187, 1, 1},        {0x189, 0x18A, 205, 1},      {0x18B, 0x18B, 1, 1},        {0x18E, 0x18E, 79, 1},
    {0x18F, 0x18F, 202, 1},      {0x190, 0x190, 203, 1},      {0x191, 0x191, 1, 1},        {0x193, 0x193, 205, 1},
    {0x194, 0x194, 207, 1},      {0x196, 0x196, 211, 1},      {0x197, 0x197, 209, 1},      {0x198, 0x198, 1, 1},
    {0x19C, 0x19C, 211, 1},      {0x19D, 0x19D, 213, 1},      {0x19F, 0x19F, 214, 1},      {0x1A0, 0x1A4, 1, 2},
    {0x1A6, 0x1A6, 218, 1},      {0x1A7, 0x1A7, 1, 1},        {0x1A9, 0x1A9, 218, 1},      {0x1AC, 0x1AC, 1, 1},
    {0x1AE, 0x1AE, 218, 1},      {0x1AF, 0x1AF, 1, 1},        {0x1B1, 0x1B2, 217, 1},      {0x1B3, 0x1B5, 1, 2},
    {0x1B7, 0x1B7, 219, 1},      {0x1B8, 0x1B8, 1, 1},        {0x1BC, 0x1BC, 1, 1},        {0x1C4, 0x1C4, 2, 1},
    {0x1C5, 0x1C5, 1, 1},        {0x1C7, 0x1C7, 2, 1},        {0x1C8, 0x1C8, 1, 1},        {0x1CA, 0x1CA, 2, 1},
    {0x1CB, 0x1DB, 1, 2},        {0x1DE, 0x1EE, 1, 2},        {0x1F1, 0x1F1, 2, 1},        {0x1F2, 0x1F4, 1, 2},
    {0x1F6, 0x1F6, -97, 1},      {0x1F7, 0x1F7, -56, 1},      {0x1F8, 0x21E, 1, 2},        {0x220, 0x220, -130, 1},
    {0x222, 0x232, 1, 2},        {0x23A, 0x23A, 10795, 1},    {0x23B, 0x23B, 1, 1},        {0x23D, 0x23D, -163, 1},
    {0x23E, 0x23E, 10792, 1},    {0x241, 0x241, 1, 1},        {0x243, 0x243, -195, 1},     {0x244, 0x244, 69, 1},
    {0x245, 0x245, 71, 1},       {0x246, 0x24E, 1, 2},        {0x370, 0x372, 1, 2},        {0x376, 0x376, 1, 1},
    {0x37F, 0x37F, 116, 1},      {0x386, 0x386, 38, 1},       {0x388, 0x38A, 37, 1},       {0x38C, 0x38C, 64, 1},
    {0x38E, 0x38F, 63, 1},       {0x391, 0x3A1, 32, 1},       {0x3A3, 0x3AB, 32, 1},       {0x3CF, 0x3CF, 8, 1},
    {0x3D8, 0x3EE, 1, 2},        {0x3F4, 0x3F4, -60, 1},      {0x3F7, 0x3F7, 1, 1},        {0x3F9, 0x3F9, -7, 1},
    {0x3FA, 0x3FA, 1, 1},        {0x3FD, 0x3FF, -130, 1},     {0x400, 0x40F, 80, 1},       {0x410, 0x42F, 32, 1},
    {0x460, 0x480, 1, 2},        {0x48A, 0x4BE, 1, 2},        {0x4C0, 0x4C0, 15, 1},       {0x4C1, 0x4CD, 1, 2},
    {0x4D0, 0x52E, 1, 2},        {0x531, 0x556, 48, 1},       {0x10A0, 0x10C5, 7264, 1},   {0x10C7, 0x10C7, 7264, 1},
    {0x10CD, 0x10CD, 7264, 1},   {0x13A0, 0x13EF, 38864, 1},  {0x13F0, 0x13F5, 8, 1},      {0x1C89, 0x1C89, 1, 1},
    {0x1C90, 0x1CBA, -3008, 1},  {0x1CBD, 0x1CBF, -3008, 1},  {0x1E00, 0x1E94, 1, 2},      {0x1E9E, 0x1E9E, -7615, 1},
    {0x1EA0, 0x1EFE, 1, 2},      {0x1F08, 0x1F0F, -8, 1},     {0x1F18, 0x1F1D, -8, 1},     {0x1F28, 0x1F2F, -8, 1},
    {0x1F38, 0x1F3F, -8, 1},     {0x1F48, 0x1F4D, -8, 1},     {0x1F59, 0x1F5F, -8, 2},     {0x1F68, 0x1F6F, -8, 1},
    {0x1F88, 0x1F8F, -8, 1},     {0x1F98, 0x1F9F, -8, 1},     {0x1FA8, 0x1FAF, -8, 1},     {0x1FB8, 0x1FB9, -8, 1},
    {0x1FBA, 0x1FBB, -74, 1},    {0x1FBC, 0x1FBC, -9, 1},     {0x1FC8, 0x1FCB, -86, 1},    {0x1FCC, 0x1FCC, -9, 1},
    {0x1FD8, 0x1FD9, -8, 1},     {0x1FDA, 0x1FDB, -100, 1},   {0x1FE8, 0x1FE9, -8, 1},     {0x1FEA, 0x1FEB, -112, 1},
    {0x1FEC, 0x1FEC, -7, 1},     {0x1FF8, 0x1FF9, -128, 1},   {0x1FFA, 0x1FFB, -126, 1},   {0x1FFC, 0x1FFC, -9, 1},
    {0x2126, 0x2126, -7517, 1},  {0x212A, 0x212A, -8383, 1},  {0x212B, 0x212B, -8262, 1},  {0x2132, 0x2132, 28, 1},
    {0x2160, 0x216F, 16, 1},     {0x2183, 0x2183, 1, 1},      {0x24B6, 0x24CF, 26, 1},     {0x2C00, 0x2C2F, 48, 1},
    {0x2C60, 0x2C60, 1, 1},      {0x2C62, 0x2C62, -10743, 1}, {0x2C63, 0x2C63, -3814, 1},  {0x2C64, 0x2C64, -10727, 1},
    {0x2C67, 0x2C6B, 1, 2},      {0x2C6D, 0x2C6D, -10780, 1}, {0x2C6E, 0x2C6E, -10749, 1}, {0x2C6F, 0x2C6F, -10783, 1},
    {0x2C70, 0x2C70, -10782, 1}, {0x2C72, 0x2C72, 1, 1},      {0x2C75, 0x2C75, 1, 1},      {0x2C7E, 0x2C7F, -10815, 1},
    {0x2C80, 0x2CE2, 1, 2},      {0x2CEB, 0x2CED, 1, 2},      {0x2CF2, 0x2CF2, 1, 1},      {0xA640, 0xA66C, 1, 2},
    {0xA680, 0xA69A, 1, 2},      {0xA722, 0xA72E, 1, 2},      {0xA732, 0xA76E, 1, 2},      {0xA779, 0xA77B, 1, 2},
    {0xA77D, 0xA77D, -35332, 1}, {0xA77E, 0xA786, 1, 2},      {0xA78B, 0xA78B, 1, 1},      {0xA78D, 0xA78D, -42280, 1},
    {0xA790, 0xA792, 1, 2},      {0xA796, 0xA7A8, 1, 2},      {0xA7AA, 0xA7AA, -42308, 1}, {0xA7AB, 0xA7AB, -42319, 1},
    {0xA7AC, 0xA7AC, -42315, 1}, {0xA7AD, 0xA7AD, -42305, 1}, {0xA7AE, 0xA7AE, -42308, 1}, {0xA7B0, 0xA7B0, -42258, 1},
    {0xA7B1, 0xA7B1, -42282, 1}, {0xA7B2, 0xA7B2, -42261, 1}, {0xA7B3, 0xA7B3, 928, 1},    {0xA7B4, 0xA7C2, 1, 2},
    {0xA7C4, 0xA7C4, -48, 1},    {0xA7C5, 0xA7C5, -42307, 1}, {0xA7C6, 0xA7C6, -35384, 1}, {0xA7C7, 0xA7C9, 1, 2},
    {0xA7CB, 0xA7CB, -42343, 1}, {0xA7CC, 0xA7DA, 1, 2},      {0xA7DC, 0xA7DC, -42561, 1}, {0xA7F5, 0xA7F5, 1, 1},
    {0xFF21, 0xFF3A, 32, 1},     {0x10400, 0x10427, 40, 1},   {0x104B0, 0x104D3, 40, 1},   {0x10570, 0x1057A, 39, 1},
    {0x1057C, 0x1058A, 39, 1},   {0x1058C, 0x10592, 39, 1},   {0x10594, 0x10595, 39, 1},   {0x10C80, 0x10CB2, 64, 1},
    {0x10D50, 0x10D65, 32, 1},   {0x118A0, 0x118BF, 32, 1},   {0x16E40, 0x16E5F, 32, 1},   {0x16EA0, 0x16EB8, 27, 1},
    {0x1E900, 0x1E921, 34, 1},
};

char32_t SimpleLowercase(char32_t c) {
  const CaseRun* run = std::upper_bound(std::begin(kLowercaseRuns), std::end(kLowercaseRuns), c,
                                        [](char32_t value, const CaseRun& r) { return value < r.first; });
  if (run == std::begin(kLowercaseRuns)) return c;
  --run;
  if (c > run->last || (c - run->first) % run->stride != 0) return c;
  return static_cast<char32_t>(static_cast<std::int32_t>(c) + run->delta);
}

// Approximations of Unicode's Cased and Case_Ignorable properties, enough for the final sigma rule: a
// letter with a case mapping either way, and the apostrophes, dots and combining accents inside words.
bool IsCased(char32_t c) {
  if (SimpleLowercase(c) != c || c == 0x130) return true;
  for (const CaseRun& run : kLowercaseRuns) {
    char32_t upper = static_cast<char32_t>(static_cast<std::int32_t>(c) - run.delta);
    if (upper >= run.first && upper <= run.last && (upper - run.first) % run.stride == 0) return true;
  }
  return false;
}

bool IsCaseIgnorable(char32_t c) {
  return c == '\'' || c == '.' || c == ':' || c == 0xAD || c == 0xB7 || c == 0x387 || c == 0x2018 || c == 0x2019 ||
         (c >= 0x300 && c <= 0x36F);
}

// Σ at the end of a word lowers to ς: preceded by a cased letter and not followed by one.
bool IsFinalSigma(std::string_view text, std::size_t start, std::size_t end) {
  bool cased_before = false;
  for (std::size_t i = start; i > 0;) {
    char32_t c = DecodeUtf8Before(text, i);
    if (IsCaseIgnorable(c)) continue;
    cased_before = IsCased(c);
    break;
  }
  if (!cased_before) return false;
  for (std::size_t i = end; i < text.size();) {
    char32_t c = DecodeUtf8(text, i);
    if (!IsCaseIgnorable(c)) return !IsCased(c);
  }
  return true;
}

void AppendLowercase(std::string_view text, SmallText& out) {
  for (std::size_t i = 0; i < text.size();) {
    char byte = text[i];
    if (static_cast<unsigned char>(byte) < 0x80) {
      out.Append(byte >= 'A' && byte <= 'Z' ? static_cast<char>(byte + ('a' - 'A')) : byte);
      ++i;
      continue;
    }
    std::size_t start = i;
    char32_t c = DecodeUtf8(text, i);
    if (c == 0x130) {  // İ lowers to two code points: i and a combining dot above
      out.Append("i\xCC\x87");
      continue;
    }
    char32_t lower = c == 0x3A3 ? (IsFinalSigma(text, start, i) ? 0x3C2 : 0x3C3) : SimpleLowercase(c);
    if (lower == c) {
      out.Append(text.substr(start, i - start));  // as it was, invalid bytes included
    } else {
      AppendUtf8(lower, out);
    }
  }
}

std::string Lowercase(std::string_view text) {
  SmallText lower;
  AppendLowercase(text, lower);
  return std::string(lower.view());
}

// ---------------------------------------------------------------------------------------------------------
// JavaScript's conversions of a JSON value.

// Number.prototype.toString(): the shortest digits that read back as the same double, written plainly
// from 1e-7 to 1e21 and in exponent form outside.
class JsNumberText {
 public:
  explicit JsNumberText(double value) {
    if (std::isnan(value) || value == 0 || std::isinf(value)) {
      Put(std::isnan(value) ? "NaN" : value == 0 ? "0" : value < 0 ? "-Infinity" : "Infinity");  // -0 is "0"
      return;
    }
    if (value < 0) {
      Put("-");
      value = -value;
    }
    char scientific[32];  // d.ddde±x
    char* end = std::to_chars(scientific, scientific + sizeof scientific, value, std::chars_format::scientific).ptr;
    char* e = std::find(scientific, end, 'e');
    char digits[24];
    int k = 0;
    for (char* p = scientific; p != e; ++p)
      if (*p != '.') digits[k++] = *p;
    int exponent = 0;
    std::from_chars(e[1] == '+' ? e + 2 : e + 1, end, exponent);
    int n = exponent + 1;  // the decimal point follows the first n digits
    std::string_view all(digits, static_cast<std::size_t>(k));
    if (k <= n && n <= 21) {
      Put(all);
      for (int i = k; i < n; ++i) Put("0");
    } else if (0 < n && n <= 21) {
      Put(all.substr(0, static_cast<std::size_t>(n)));
      Put(".");
      Put(all.substr(static_cast<std::size_t>(n)));
    } else if (-6 < n && n <= 0) {
      Put("0.");
      for (int i = n; i < 0; ++i) Put("0");
      Put(all);
    } else {
      Put(all.substr(0, 1));
      if (k > 1) {
        Put(".");
        Put(all.substr(1));
      }
      Put(n - 1 < 0 ? "e-" : "e+");
      char exponent_text[8];
      Put(std::string_view(
          exponent_text,
          std::to_chars(exponent_text, exponent_text + sizeof exponent_text, std::abs(n - 1)).ptr - exponent_text));
    }
  }
  std::string_view view() const { return std::string_view(text_, size_); }

 private:
  void Put(std::string_view part) {
    std::memcpy(text_ + size_, part.data(), part.size());
    size_ += part.size();
  }

  char text_[40];
  std::size_t size_ = 0;
};

// JavaScript's WhiteSpace and LineTerminator, which Number("  12\n") ignores.
bool IsJsSpace(char32_t c) {
  return c == 0x9 || c == 0xA || c == 0xB || c == 0xC || c == 0xD || c == 0x20 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 ||
         c == 0xFEFF;
}

std::string_view TrimJsSpace(std::string_view text) {
  while (!text.empty()) {
    std::size_t next = 0;
    if (!IsJsSpace(DecodeUtf8(text, next))) break;
    text.remove_prefix(next);
  }
  while (!text.empty()) {
    std::size_t start = text.size();
    if (!IsJsSpace(DecodeUtf8Before(text, start))) break;
    text.remove_suffix(text.size() - start);
  }
  return text;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// "0x1F", "0o17", "0b101" (no sign allowed): read through hexadecimal, which from_chars rounds correctly.
double NonDecimalToNumber(std::string_view digits, int base) {
  if (digits.empty()) return kNaN;
  std::string hex;
  if (base == 16) {
    for (char c : digits)
      if (!std::isxdigit(static_cast<unsigned char>(c))) return kNaN;
    hex.assign(digits);
  } else {
    int bits_per_digit = base == 8 ? 3 : 1;
    std::string bits;
    for (char c : digits) {
      if (c < '0' || c >= '0' + base) return kNaN;
      for (int bit = bits_per_digit - 1; bit >= 0; --bit)
        bits.push_back(static_cast<char>('0' + (((c - '0') >> bit) & 1)));
    }
    bits.insert(0, (4 - bits.size() % 4) % 4, '0');
    for (std::size_t i = 0; i < bits.size(); i += 4)
      hex.push_back("0123456789abcdef"[(bits[i] - '0') * 8 + (bits[i + 1] - '0') * 4 + (bits[i + 2] - '0') * 2 +
                                       (bits[i + 3] - '0')]);
  }
  double value = 0;
  auto result = std::from_chars(hex.data(), hex.data() + hex.size(), value, std::chars_format::hex);
  return result.ec == std::errc::result_out_of_range ? kInfinity : value;
}

// Number(text), JavaScript's StringToNumber: NaN unless the whole text (spaces aside) is a number.
double StringToNumber(std::string_view text) {
  text = TrimJsSpace(text);
  if (text.empty()) return 0;
  if (text.size() > 2 && text[0] == '0') {
    char prefix = static_cast<char>(text[1] | 0x20);
    int base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 0;
    if (base != 0) return NonDecimalToNumber(text.substr(2), base);
  }
  bool negative = text[0] == '-';
  if (text[0] == '+' || text[0] == '-') text.remove_prefix(1);
  if (text == "Infinity") return negative ? -kInfinity : kInfinity;
  // digits [. digits] or . digits, then an optional exponent: what from_chars also accepts, minus inf and nan
  std::size_t i = 0, mantissa_digits = 0;
  for (; i < text.size() && IsDigit(text[i]); ++i) ++mantissa_digits;
  std::size_t integer_digits = mantissa_digits;
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && IsDigit(text[i]); ++i) ++mantissa_digits;
  if (mantissa_digits == 0) return kNaN;
  std::size_t mantissa_end = i;
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative_exponent = i < text.size() && text[i] == '-';
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    std::size_t exponent_start = i;
    for (; i < text.size() && IsDigit(text[i]); ++i) exponent = std::min(exponent * 10 + (text[i] - '0'), 100000L);
    if (i == exponent_start) return kNaN;
    if (negative_exponent) exponent = -exponent;
  }
  if (i != text.size()) return kNaN;
  double value = 0;
  auto result = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  if (result.ec == std::errc::result_out_of_range) {
    // Beyond the doubles: Infinity or 0 by the magnitude of the first significant digit.
    long magnitude = 0;
    for (std::size_t d = 0, digit_index = 0; d < mantissa_end; ++d) {
      if (text[d] == '.') continue;
      if (text[d] != '0') {
        magnitude = static_cast<long>(integer_digits) - static_cast<long>(digit_index) - 1;
        break;
      }
      ++digit_index;
    }
    value = magnitude + exponent > 0 ? kInfinity : 0;
  }
  return negative ? -value : value;
}

double JsonNumber(const Json& value) { return value.get<double>(); }  // integers too, as JavaScript holds them

void AppendScalarJsString(const Json& value, SmallText& out) {
  switch (value.type()) {
    case Json::value_t::string:
      out.Append(value.get_ref<const std::string&>());
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      out.Append(JsNumberText(JsonNumber(value)).view());
      break;
    case Json::value_t::boolean:
      out.Append(value.get<bool>() ? "true" : "false");
      break;
    case Json::value_t::object:
      out.Append("[object Object]");
      break;
    default:
      out.Append("null");
      break;
  }
}

// String(array). Arrays join their elements with commas, nested arrays in turn, null elements as
// nothing; with a stack rather than recursion, for attributes are not depth-limited.
void AppendJsString(const Json& value, SmallText& out) {
  if (!value.is_array()) return AppendScalarJsString(value, out);
  std::vector<std::pair<const Json*, std::size_t>> stack{{&value, 0}};
  while (!stack.empty()) {
    const Json* array = stack.back().first;
    std::size_t index = stack.back().second++;
    if (index == array->size()) {
      stack.pop_back();
      continue;
    }
    if (index > 0) out.Append(',');
    const Json& element = (*array)[index];
    if (element.is_array()) {
      stack.emplace_back(&element, 0);
    } else if (!element.is_null()) {
      AppendScalarJsString(element, out);
    }
  }
}

// String(value) as a view: into the value itself for a string, else into `buffer`.
std::string_view JsStringOf(const Value& value, SmallText& buffer) {
  switch (value.type) {
    case ValueType::kString:
      return value.text;
    case ValueType::kNumber:
      buffer.Append(JsNumberText(value.number).view());
      break;
    case ValueType::kBoolean:
      buffer.Append(value.boolean ? "true" : "false");
      break;
    case ValueType::kNull:
      buffer.Append("null");
      break;
    case ValueType::kObject:
      buffer.Append("[object Object]");
      break;
    case ValueType::kArray:
      AppendJsString(*value.json, buffer);
      break;
  }
  return buffer.view();
}

std::string JsString(const Json& value) {
  SmallText text;
  return std::string(JsStringOf(Value::Of(value), text));
}

// Number(value), as value * 1 computes it.
double JsToNumber(const Value& value) {
  switch (value.type) {
    case ValueType::kNull:
      return 0;
    case ValueType::kBoolean:
      return value.boolean ? 1 : 0;
    case ValueType::kNumber:
      return value.number;
    case ValueType::kString:
      return StringToNumber(value.text);
    case ValueType::kArray: {
      SmallText text;
      AppendJsString(*value.json, text);
      return StringToNumber(text.view());
    }
    case ValueType::kObject:
      break;
  }
  return kNaN;  // an object is "[object Object]"
}

bool JsTruthy(const Value& value) {
  switch (value.type) {
    case ValueType::kNull:
      return false;
    case ValueType::kBoolean:
      return value.boolean;
    case ValueType::kNumber:
      return value.number != 0 && !std::isnan(value.number);
    case ValueType::kString:
      return !value.text.empty();
    default:
      return true;
  }
}

bool JsTruthy(const Json& value) { return JsTruthy(Value::Of(value)); }

// GrowthBook's getType: the names $type accepts.
enum class JsType { kNull, kBoolean, kNumber, kString, kArray, kObject, kUndefined };

JsType TypeOf(const Value& value) {
  switch (value.type) {
    case ValueType::kBoolean:
      return JsType::kBoolean;
    case ValueType::kNumber:
      return JsType::kNumber;
    case ValueType::kString:
      return JsType::kString;
    case ValueType::kArray:
      return JsType::kArray;
    case ValueType::kObject:
      return JsType::kObject;
    case ValueType::kNull:
      break;
  }
  return JsType::kNull;
}

JsType TypeOf(const Json& value) { return TypeOf(Value::Of(value)); }

std::optional<JsType> ParseTypeName(const Json& name) {
  static const std::pair<const char*, JsType> kNames[] = {
      {"string", JsType::kString},       {"number", JsType::kNumber}, {"boolean", JsType::kBoolean},
      {"array", JsType::kArray},         {"object", JsType::kObject}, {"null", JsType::kNull},
      {"undefined", JsType::kUndefined},
  };
  if (!name.is_string()) return std::nullopt;
  for (const auto& [text, type] : kNames)
    if (name.get_ref<const std::string&>() == text) return type;
  return std::nullopt;
}

// actual === expected. Objects and arrays are never the same object as one written in the condition.
bool JsStrictEquals(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case ValueType::kNull:
      return true;
    case ValueType::kBoolean:
      return a.boolean == b.boolean;
    case ValueType::kNumber:
      return a.number == b.number;
    case ValueType::kString:
      return a.text == b.text;
    default:
      return false;
  }
}

// JSON.stringify(actual) === JSON.stringify(literal). Object keys are compared as a set: the order of
// keys is not kept by JSON values here (nor by jsonb). The recursion follows `literal`, whose depth
// Compile bounded.
JsType StringifiedType(const Value& value) {
  JsType type = TypeOf(value);
  return type == JsType::kNumber && !std::isfinite(value.number) ? JsType::kNull : type;  // "null"
}

JsType StringifiedType(const Json& value) { return StringifiedType(Value::Of(value)); }

bool StringifyEquals(const Json& actual, const Json& literal) {
  JsType type = StringifiedType(literal);
  if (StringifiedType(actual) != type) return false;
  switch (type) {
    case JsType::kArray:
      if (actual.size() != literal.size()) return false;
      for (std::size_t i = 0; i < literal.size(); ++i)
        if (!StringifyEquals(actual[i], literal[i])) return false;
      return true;
    case JsType::kObject:
      if (actual.size() != literal.size()) return false;
      for (auto it = literal.begin(); it != literal.end(); ++it) {
        auto found = actual.find(it.key());
        if (found == actual.end() || !StringifyEquals(*found, it.value())) return false;
      }
      return true;
    default:
      return type == JsType::kNull || JsStrictEquals(Value::Of(actual), Value::Of(literal));
  }
}

// The same for an attribute: only an array or object can equal a literal, which is one of those.
bool StringifyEquals(const Value& actual, const Json& literal) {
  if (actual.json != nullptr) return StringifyEquals(*actual.json, literal);
  JsType type = StringifiedType(literal);
  return StringifiedType(actual) == type && (type == JsType::kNull || JsStrictEquals(actual, Value::Of(literal)));
}

// A value after ToPrimitive, for < and friends: a string (arrays and objects become one) or a number.
struct Primitive {
  bool is_string = false;
  std::string_view text;
  double number = 0;  // for a string, its Number() once known
  bool number_known = true;
};

Primitive ToPrimitive(const Value& value, SmallText& buffer) {
  switch (value.type) {
    case ValueType::kString:
    case ValueType::kArray:
    case ValueType::kObject:
      return Primitive{true, JsStringOf(value, buffer), 0, false};
    default:
      return Primitive{false, {}, JsToNumber(value), true};
  }
}

// x < y, JavaScript's abstract relational comparison: nullopt is its undefined (a NaN took part), for which
// both < and <= are false.
std::optional<bool> JsLessThan(const Primitive& x, const Primitive& y) {
  if (x.is_string && y.is_string) return CompareJsStrings(x.text, y.text) < 0;
  double nx = x.number_known ? x.number : StringToNumber(x.text);
  double ny = y.number_known ? y.number : StringToNumber(y.text);
  if (std::isnan(nx) || std::isnan(ny)) return std::nullopt;
  return nx < ny;
}

// GrowthBook's paddedVersionString: "v1.2.3+build" becomes "    1-    2-    3-~", "1.0.0-rc.1" becomes
// "    1-    0-    0-rc-    1", so that versions compare as strings.
// The text paddedVersionString pads: String(input), "0" unless a number or a non-empty string, without a
// leading "v" and from the first "+" that no line terminator follows (replace(/(^v|\+.*$)/g, "")).
// `ascii` tells whether it is plain ASCII. One pass: this runs for every call of a $v operator.
std::string_view VersionText(const Value& input, std::optional<JsNumberText>& number, bool& ascii) {
  std::string_view text = "0";
  if (input.type == ValueType::kNumber) {
    text = number.emplace(input.number).view();
  } else if (input.type == ValueType::kString && !input.text.empty()) {
    text = input.text;
  }
  std::size_t start = text[0] == 'v' ? 1 : 0;
  std::size_t plus = text.size();
  ascii = true;
  for (std::size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      if (plus == text.size()) plus = i;
    } else if (c == '\n' || c == '\r') {
      plus = text.size();
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
          (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
        plus = text.size();  // U+2028, U+2029
        i += 2;
      }
    }
  }
  return text.substr(start, plus - start);
}

// Calls emit(c) for each character of the padded form of a VersionText: split(/[-.]/), a "~" part after
// a plain x.y.z, digits padded to 5 columns, joined with "-". Stops early when emit returns true.
template <typename Emit>
void ForEachPaddedChar(std::string_view text, Emit emit) {
  std::size_t parts = 0;
  for (std::size_t part_start = 0;;) {
    std::size_t part_end = part_start;
    bool digits = true;
    for (; part_end < text.size() && text[part_end] != '-' && text[part_end] != '.'; ++part_end)
      digits = digits && IsDigit(text[part_end]);
    std::size_t length = part_end - part_start;
    if (length > 0 && length < 5 && digits)
      for (std::size_t k = length; k < 5; ++k)
        if (emit(' ')) return;
    for (std::size_t i = part_start; i < part_end; ++i)
      if (emit(text[i])) return;
    ++parts;
    if (part_end == text.size()) break;
    if (emit('-')) return;
    part_start = part_end + 1;
  }
  if (parts == 3 && !emit('-')) emit('~');
}

void AppendPaddedVersion(std::string_view text, SmallText& out) {
  ForEachPaddedChar(text, [&out](char c) {
    out.Append(c);
    return false;
  });
}

// CompareJsStrings(padded form of `text`, padded) for an ASCII `text`, where bytes order as UTF-16 code
// units do, without writing the padded form: versions mostly differ in their first parts.
int ComparePaddedAscii(std::string_view text, std::string_view padded) {
  std::size_t j = 0;
  int order = 0;
  ForEachPaddedChar(text, [&](char c) {
    if (j == padded.size()) {
      order = 1;
      return true;
    }
    unsigned char a = static_cast<unsigned char>(c), b = static_cast<unsigned char>(padded[j++]);
    if (a != b) order = a < b ? -1 : 1;
    return a != b;
  });
  if (order == 0 && j < padded.size()) order = -1;
  return order;
}

// A version whose parts are all 1 to 4 digits ("4.3.1", "v10.15.7+build"), as most are. In its padded
// form each part is a block of 5 columns, its digits right-aligned after spaces: blocks order by their
// number of digits, then by value, and two such versions compare block by block, without the padded text.
struct ShortVersion {
  static constexpr std::size_t kMaxParts = 8;
  std::size_t count = 0;                 // 0: not a short version
  std::uint32_t parts[kMaxParts] = {};   // digits << 16 | value
};

// `value` as a ShortVersion: a non-empty string, an optional leading "v", then parts of 1 to 4 digits
// separated by "." or "-" (split(/[-.]/)), then optionally "+" and a build that paddedVersionString
// drops (no line terminator in it, nor anything but ASCII). False for anything else: the padded form
// decides those.
bool ParseShortVersion(const Value& value, ShortVersion& version) {
  if (value.type != ValueType::kString) return false;
  std::string_view text = value.text;
  std::size_t i = !text.empty() && text[0] == 'v' ? 1 : 0;
  std::size_t count = 0;
  for (;;) {
    std::uint32_t digits = 0, number = 0;
    for (; i < text.size() && IsDigit(text[i]); ++i) {
      if (++digits > 4) return false;
      number = number * 10 + static_cast<std::uint32_t>(text[i] - '0');
    }
    if (digits == 0 || count == ShortVersion::kMaxParts) return false;
    version.parts[count++] = digits << 16 | number;
    if (i == text.size()) break;
    char c = text[i++];
    if (c == '+') {
      for (; i < text.size(); ++i)
        if (text[i] == '\n' || text[i] == '\r' || static_cast<unsigned char>(text[i]) >= 0x80) return false;
      break;
    }
    if (c != '.' && c != '-') return false;
  }
  version.count = count;
  return true;
}

// CompareJsStrings of the padded forms of two short versions. When one runs out of parts, the shorter
// ends there (a prefix of the other) unless it has 3 parts: then "-~" follows, and "~" sorts after the
// space that begins the other's next block.
int CompareShortVersions(const ShortVersion& a, const ShortVersion& b) {
  std::size_t common = std::min(a.count, b.count);
  for (std::size_t i = 0; i < common; ++i)
    if (a.parts[i] != b.parts[i]) return a.parts[i] < b.parts[i] ? -1 : 1;
  if (a.count == b.count) return 0;
  if (a.count < b.count) return a.count == 3 ? 1 : -1;
  return b.count == 3 ? -1 : 1;
}

std::string PaddedVersion(const Json& input) {
  std::optional<JsNumberText> number;
  bool ascii;
  SmallText padded;
  AppendPaddedVersion(VersionText(Value::Of(input), number, ascii), padded);
  return std::string(padded.view());
}

// ---------------------------------------------------------------------------------------------------------
// Paths: GrowthBook's getPath descends into objects by key and into arrays by index, where "length" is
// the array's size (a number, so nothing lies below it). The properties JavaScript objects inherit
// ("constructor", "toString") are not attributes here.

std::optional<std::size_t> ArrayIndex(const std::string& key) {
  if (key.empty() || key.size() > 10 || (key[0] == '0' && key.size() > 1) ||
      !std::all_of(key.begin(), key.end(), IsDigit))
    return std::nullopt;
  std::uint64_t index = std::stoull(key);
  if (index >= 0xFFFFFFFFull) return std::nullopt;  // not an array index in JavaScript
  return static_cast<std::size_t>(index);
}

// Where a path leads: a value of the document, an array's length (a number not in the document), or nothing.
struct PathTarget {
  const Json* value = nullptr;
  std::optional<std::size_t> array_length;
};

PathTarget FindPath(const Json& root, const std::vector<std::string>& path) {
  const Json* current = &root;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& key = path[i];
    if (current->is_object()) {
      auto found = current->find(key);
      if (found == current->end()) return {};
      current = &*found;
    } else if (current->is_array()) {
      if (key == "length") {
        if (i + 1 != path.size()) return {};
        return PathTarget{nullptr, current->size()};
      }
      std::optional<std::size_t> index = ArrayIndex(key);
      if (!index || *index >= current->size()) return {};
      current = &(*current)[*index];
    } else {
      return {};
    }
  }
  return PathTarget{current, std::nullopt};
}

// The attribute a path leads to inside a JSON document; nullopt when absent.
std::optional<AttributeValue> ValueAt(const Json& root, const std::vector<std::string>& path) {
  PathTarget target = FindPath(root, path);
  if (target.array_length) return AttributeValue::Number(static_cast<double>(*target.array_length));
  if (target.value == nullptr) return std::nullopt;
  return AttributeValue::Of(*target.value);
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    std::size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The compiled tree.

// The values of $in, $nin, $ini, $nini and of a saved group, ready for lookup: Array.prototype.includes
// (===, so only scalars can match), strings lowercased for the case-insensitive forms.
struct ValueSet {
  struct ShortString {  // a string of at most kShortText bytes as its ShortWord
    std::uint64_t word;
    std::uint32_t size;
    bool operator==(const ShortString& other) const { return word == other.word && size == other.size; }
    bool operator<(const ShortString& other) const {
      return size != other.size ? size < other.size : word < other.word;
    }
  };

  bool insensitive = false;
  std::vector<ShortString> short_strings;  // sorted, unique
  std::vector<std::string> long_strings;   // the longer ones: sorted, unique
  std::vector<double> numbers;             // sorted
  bool has_true = false, has_false = false, has_null = false;
  std::optional<std::string> text;  // a saved group that is a string: its includes() finds substrings
  bool throws = false;              // a saved group that is a number, true or an object: no includes()

  bool Contains(const Value& value) const {
    if (throws) throw JsTypeError{};
    if (text) return ContainsSubstring(value);
    switch (value.type) {
      case ValueType::kString:
        return insensitive ? ContainsLowercase(value.text) : ContainsText(value.text);
      case ValueType::kNumber:
        return std::binary_search(numbers.begin(), numbers.end(), value.number);
      case ValueType::kBoolean:
        return value.boolean ? has_true : has_false;
      case ValueType::kNull:
        return has_null;
      default:
        return false;
    }
  }

  bool ContainsText(std::string_view key) const {
    if (key.size() <= kShortText) {
      ShortString sought{ShortWord(key), static_cast<std::uint32_t>(key.size())};
      if (short_strings.size() <= 8)  // a few: compared one by one, a word and a length each
        return std::find(short_strings.begin(), short_strings.end(), sought) != short_strings.end();
      return std::binary_search(short_strings.begin(), short_strings.end(), sought);
    }
    auto found = std::lower_bound(long_strings.begin(), long_strings.end(), key,
                                  [](const std::string& a, std::string_view b) { return a < b; });
    return found != long_strings.end() && *found == key;
  }

  bool ContainsLowercase(std::string_view key) const {
    SmallText lower;
    AppendLowercase(key, lower);
    return ContainsText(lower.view());
  }

  bool ContainsSubstring(const Value& value) const {
    SmallText buffer;
    return text->find(JsStringOf(value, buffer)) != std::string::npos;
  }

  // GrowthBook's isIn: an array attribute matches when any of its elements is in the set.
  bool HasAny(const Value& actual) const {
    if (actual.type != ValueType::kArray) return Contains(actual);
    return std::any_of(actual.json->begin(), actual.json->end(),
                       [this](const Json& element) { return Contains(Value::Of(element)); });
  }
};

std::shared_ptr<const ValueSet> MakeValueSet(const Json& array, bool insensitive) {
  auto set = std::make_shared<ValueSet>();
  set->insensitive = insensitive;
  for (const Json& value : array) {
    switch (TypeOf(value)) {
      case JsType::kString:
      {
        std::string text = insensitive ? Lowercase(value.get_ref<const std::string&>()) : value.get<std::string>();
        if (text.size() <= kShortText) {
          set->short_strings.push_back({ShortWord(text), static_cast<std::uint32_t>(text.size())});
        } else {
          set->long_strings.push_back(std::move(text));
        }
        break;
      }
      case JsType::kNumber:
        set->numbers.push_back(JsonNumber(value));
        break;
      case JsType::kBoolean:
        (value.get<bool>() ? set->has_true : set->has_false) = true;
        break;
      case JsType::kNull:
        set->has_null = true;
        break;
      default:
        break;  // an array or object in the list never === an attribute
    }
  }
  std::sort(set->short_strings.begin(), set->short_strings.end());
  set->short_strings.erase(std::unique(set->short_strings.begin(), set->short_strings.end()), set->short_strings.end());
  std::sort(set->long_strings.begin(), set->long_strings.end());
  set->long_strings.erase(std::unique(set->long_strings.begin(), set->long_strings.end()), set->long_strings.end());
  std::sort(set->numbers.begin(), set->numbers.end());
  return set;
}

struct Matcher;
struct Operation;

// One key of a condition object (evalCondition): an attribute path with the value it must match, or one of
// $and, $or, $nor and $not over nested conditions.
struct Clause {
  enum class Kind { kPath, kAnd, kOr, kNor, kNot, kTrue, kFalse, kThrow };
  Kind kind = Kind::kTrue;
  std::vector<std::string> path;          // kPath
  std::size_t slot = 0;                   // kPath: path[0]'s place among the condition's keys
  std::vector<Matcher> matcher;           // kPath: one
  std::vector<Condition::Node> children;  // kAnd, kOr, kNor; kNot: one
};

}  // namespace

// A condition (an object, or what JavaScript's Object.entries makes of another value): all clauses hold.
struct Condition::Node {
  std::vector<Clause> clauses;
};

namespace {

// A condition value (evalConditionValue): a literal the attribute is compared with, or operators.
struct Matcher {
  enum class Kind {
    kText,             // value + "" === text
    kTextInsensitive,  // String(value).toLowerCase() === text (text already lowercase), inside $alli
    kNumber,           // value * 1 === number
    kBoolean,          // value !== null && !!value === boolean
    kNull,             // value === null
    kLiteral,          // JSON.stringify(value) === JSON.stringify(literal)
    kOperators,        // every operation holds
    kNever,            // a string JavaScript can hold but no UTF-8 text can equal
  };
  Kind kind = Kind::kNever;
  ConstantText text;
  double number = 0;
  bool boolean = false;
  Json literal;
  std::vector<Operation> operations;
};

enum class Op {
  kEq,
  kNe,
  kLt,
  kLte,
  kGt,
  kGte,
  kVeq,
  kVne,
  kVgt,
  kVgte,
  kVlt,
  kVlte,
  kExists,
  kIn,
  kNotIn,
  kAll,
  kElemMatch,
  kSize,
  kNot,
  kType,
  kRegex,
  kConstant,  // an operand GrowthBook ignores, or an unknown operator: always `constant`
};

struct Operation {
  Op op = Op::kConstant;
  bool constant = false;                       // kConstant; kExists: the operand's truthiness
  Json scalar;                                 // kEq, kNe
  bool bound_is_string = false;                // kLt .. kGte: the operand after ToPrimitive
  double bound_number = 0;                     //   and its Number()
  std::string text;                            //   and its string; the padded version for kVeq ..
  ShortVersion version;                        // kVeq ..: the operand, when it is a short version
  std::shared_ptr<const ValueSet> values;      // kIn, kNotIn
  std::vector<Matcher> matchers;               // kAll; kNot and kSize: one; kElemMatch: one or none
  std::vector<Condition::Node> condition;      // kElemMatch over a condition: one
  bool throws = false;                         // kElemMatch: JavaScript throws for a null operand
  JsType type = JsType::kUndefined;            // kType
  std::shared_ptr<const CompiledRegex> regex;  // kRegex
};

bool IsOperatorObject(const Json& value) {
  if (!value.is_object() || value.empty()) return false;
  for (auto it = value.begin(); it != value.end(); ++it)
    if (it.key().empty() || it.key()[0] != '$') return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation.

// Where a condition's paths are looked up: the user's attributes, or one array element under $elemMatch.
struct Scope {
  AttributeSource* attributes = nullptr;
  const Json* element = nullptr;
};

bool EvalNode(const Condition::Node& node, const Scope& scope);
bool EvalMatcher(const Matcher& matcher, const Value& value);

bool EvalText(const Matcher& matcher, const Value& value) {
  SmallText buffer;
  std::string_view text = JsStringOf(value, buffer);
  if (matcher.kind == Matcher::Kind::kText) return matcher.text.Equals(text);
  SmallText lower;
  AppendLowercase(text, lower);
  return matcher.text.Equals(lower.view());
}

bool EvalVersion(const Operation& operation, const Value& actual) {
  std::optional<JsNumberText> number;
  bool ascii;
  ShortVersion version;
  int order;
  if (operation.version.count > 0 && ParseShortVersion(actual, version)) {
    order = CompareShortVersions(version, operation.version);
  } else if (std::string_view text = VersionText(actual, number, ascii); ascii) {
    order = ComparePaddedAscii(text, operation.text);
  } else {
    SmallText padded;
    AppendPaddedVersion(text, padded);
    order = CompareJsStrings(padded.view(), operation.text);
  }
  switch (operation.op) {
    case Op::kVeq:
      return order == 0;
    case Op::kVne:
      return order != 0;
    case Op::kVgt:
      return order > 0;
    case Op::kVgte:
      return order >= 0;
    case Op::kVlt:
      return order < 0;
    default:
      return order <= 0;
  }
}

bool EvalRelation(const Operation& operation, const Value& actual) {
  SmallText buffer;
  Primitive value = ToPrimitive(actual, buffer);
  Primitive bound{operation.bound_is_string, operation.text, operation.bound_number, true};
  std::optional<bool> result;
  switch (operation.op) {
    case Op::kLt:  // actual < bound
      return JsLessThan(value, bound).value_or(false);
    case Op::kGt:  // bound < actual
      return JsLessThan(bound, value).value_or(false);
    case Op::kLte:  // !(bound < actual), false when undefined
      result = JsLessThan(bound, value);
      return result && !*result;
    default:  // kGte: !(actual < bound)
      result = JsLessThan(value, bound);
      return result && !*result;
  }
}

bool EvalOperation(const Operation& operation, const Value& actual) {
  switch (operation.op) {
    case Op::kEq:
      return JsStrictEquals(actual, Value::Of(operation.scalar));
    case Op::kNe:
      return !JsStrictEquals(actual, Value::Of(operation.scalar));
    case Op::kLt:
    case Op::kLte:
    case Op::kGt:
    case Op::kGte:
      return EvalRelation(operation, actual);
    case Op::kVeq:
    case Op::kVne:
    case Op::kVgt:
    case Op::kVgte:
    case Op::kVlt:
    case Op::kVlte:
      return EvalVersion(operation, actual);
    case Op::kExists:
      return operation.constant != (actual.type == ValueType::kNull);
    case Op::kIn:
      return operation.values->HasAny(actual);
    case Op::kNotIn:
      return !operation.values->HasAny(actual);
    case Op::kAll:
      if (actual.type != ValueType::kArray) return false;
      for (const Matcher& expected : operation.matchers)
        if (std::none_of(actual.json->begin(), actual.json->end(),
                         [&expected](const Json& element) { return EvalMatcher(expected, Value::Of(element)); }))
          return false;
      return true;
    case Op::kElemMatch:
      if (actual.type != ValueType::kArray) return false;
      if (operation.throws) throw JsTypeError{};
      for (const Json& element : *actual.json) {
        Value value = Value::Of(element);
        if (!JsTruthy(value)) continue;  // GrowthBook skips falsy elements
        bool matched = operation.matchers.empty() ? EvalNode(operation.condition[0], Scope{nullptr, &element})
                                                  : EvalMatcher(operation.matchers[0], value);
        if (matched) return true;
      }
      return false;
    case Op::kSize:
      if (actual.type != ValueType::kArray) return false;
      return EvalMatcher(operation.matchers[0], Value::Number(static_cast<double>(actual.json->size())));
    case Op::kNot:
      return !EvalMatcher(operation.matchers[0], actual);
    case Op::kType:
      return TypeOf(actual) == operation.type;
    case Op::kRegex: {
      SmallText buffer;
      return operation.regex->Search(JsStringOf(actual, buffer));
    }
    case Op::kConstant:
      return operation.constant;
  }
  return false;
}

bool EvalMatcher(const Matcher& matcher, const Value& value) {
  switch (matcher.kind) {
    case Matcher::Kind::kText:
      if (value.type == ValueType::kString) return matcher.text.Equals(value.text);
      return EvalText(matcher, value);
    case Matcher::Kind::kTextInsensitive:
      return EvalText(matcher, value);
    case Matcher::Kind::kNumber:
      return JsToNumber(value) == matcher.number;
    case Matcher::Kind::kBoolean:
      return value.type != ValueType::kNull && JsTruthy(value) == matcher.boolean;
    case Matcher::Kind::kNull:
      return value.type == ValueType::kNull;
    case Matcher::Kind::kLiteral:
      return StringifyEquals(value, matcher.literal);
    case Matcher::Kind::kOperators:
      for (const Operation& operation : matcher.operations)
        if (!EvalOperation(operation, value)) return false;
      return true;
    case Matcher::Kind::kNever:
      return false;
  }
  return false;
}

bool EvalNode(const Condition::Node& node, const Scope& scope) {
  for (const Clause& clause : node.clauses) {
    switch (clause.kind) {
      case Clause::Kind::kPath: {
        Value found;  // a missing attribute reads as null: getPath returns null
        if (scope.attributes != nullptr) {
          scope.attributes->FindPrepared(clause.slot, clause.path, found);
        } else {
          found = ValueAt(*scope.element, clause.path).value_or(Value());
        }
        if (!EvalMatcher(clause.matcher[0], found)) return false;
        break;
      }
      case Clause::Kind::kAnd:
        for (const Condition::Node& child : clause.children)
          if (!EvalNode(child, scope)) return false;
        break;
      case Clause::Kind::kOr:
      case Clause::Kind::kNor: {
        bool any = clause.children.empty();  // an empty $or holds, so an empty $nor does not
        for (std::size_t i = 0; !any && i < clause.children.size(); ++i) any = EvalNode(clause.children[i], scope);
        if (any != (clause.kind == Clause::Kind::kOr)) return false;
        break;
      }
      case Clause::Kind::kNot:
        if (EvalNode(clause.children[0], scope)) return false;
        break;
      case Clause::Kind::kTrue:
        break;
      case Clause::Kind::kFalse:
        return false;
      case Clause::Kind::kThrow:
        throw JsTypeError{};
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Compilation.

constexpr const char* kOperatorNames =
    "$eq, $ne, $lt, $lte, $gt, $gte, $in, $nin, $ini, $nini, $all, $alli, $elemMatch, $size, $exists, $type, "
    "$regex, $regexi, $not, $veq, $vne, $vgt, $vgte, $vlt, $vlte, $inGroup, $notInGroup";

bool IsValueOperator(const std::string& key) {
  static const char* const kOperators[] = {
      "$eq",   "$ne",  "$lt",   "$lte",  "$gt",        "$gte",    "$in",      "$nin",       "$ini",
      "$nini", "$all", "$alli", "$size", "$elemMatch", "$exists", "$type",    "$regex",     "$regexi",
      "$veq",  "$vne", "$vgt",  "$vgte", "$vlt",       "$vlte",   "$inGroup", "$notInGroup"};
  return std::any_of(std::begin(kOperators), std::end(kOperators), [&key](const char* name) { return key == name; });
}

bool IsScalar(const Json& value) {
  return value.is_string() || value.is_number() || value.is_boolean() || value.is_null();
}

[[noreturn]] void TooLarge() {
  throw Error(ErrorKind::kProgramLimit, "condition is too large",
              "The limit is " + std::to_string(kMaxConditionValues) + " values.");
}

// Counts the values of the condition and measures its nesting before anything recurses over it: this
// recursion itself stops at the depth limit, so a 5,000-deep document cannot overflow the stack.
void Measure(const Json& value, int depth, int& values) {
  if (++values > kMaxConditionValues) TooLarge();
  if (!value.is_structured()) return;
  if (depth > kMaxConditionDepth)
    throw Error(ErrorKind::kProgramLimit, "condition is nested too deeply",
                "The limit is " + std::to_string(kMaxConditionDepth) + " levels.");
  for (const Json& child : value) Measure(child, depth + 1, values);
}

std::string Member(const std::string& where, const std::string& key) { return where.empty() ? key : where + "." + key; }
std::string Element(const std::string& where, std::size_t index) { return where + "[" + std::to_string(index) + "]"; }

Matcher TextMatcher(std::string_view text) {
  Matcher matcher;
  matcher.kind = Matcher::Kind::kText;
  matcher.text = ConstantText(std::string(text));
  return matcher;
}

Clause ConstantClause(Clause::Kind kind) {
  Clause clause;
  clause.kind = kind;
  return clause;
}

// What a clause over one UTF-16 unit of a string does: {"<index>": "<unit>"}.
Clause UnitClause(std::size_t index, std::optional<std::string_view> unit) {
  if (!unit) return ConstantClause(Clause::Kind::kFalse);
  Clause clause;
  clause.kind = Clause::Kind::kPath;
  clause.path = {std::to_string(index)};
  clause.matcher.push_back(TextMatcher(*unit));
  return clause;
}

// The order of Object.entries, which decides whether a clause that throws is reached: keys that are array
// indices first, ascending, then the others in the order the object keeps (the order they were written in
// is lost to jsonb and to nlohmann::json alike).
std::vector<Json::const_iterator> EntriesInJsOrder(const Json& object) {
  std::vector<Json::const_iterator> entries;
  for (auto it = object.cbegin(); it != object.cend(); ++it) entries.push_back(it);
  std::stable_sort(entries.begin(), entries.end(), [](const Json::const_iterator& a, const Json::const_iterator& b) {
    std::optional<std::size_t> index_a = ArrayIndex(a.key()), index_b = ArrayIndex(b.key());
    return index_a && (!index_b || *index_a < *index_b);
  });
  return entries;
}

class Compiler {
 public:
  Compiler(const Json& saved_groups, RegexEngine& regex, ConditionMode mode, int values)
      : saved_groups_(saved_groups), regex_(regex), strict_(mode == ConditionMode::kStrict), values_(values) {}

  // evalCondition's condition: an object, or in lenient mode whatever Object.entries makes of the value.
  Condition::Node CompileNode(const Json& condition, const std::string& where) {
    Condition::Node node;
    if (condition.is_object()) {
      for (auto it : EntriesInJsOrder(condition)) node.clauses.push_back(CompileClause(it.key(), it.value(), where));
      return node;
    }
    if (strict_) Refuse(where, "must be a JSON object");
    if (condition.is_array()) {
      for (std::size_t i = 0; i < condition.size(); ++i)
        node.clauses.push_back(CompileClause(std::to_string(i), condition[i], where));
    } else if (condition.is_string()) {
      ForEachUtf16Unit(condition.get_ref<const std::string&>(), [&](std::size_t index, auto unit) {
        Spend();
        node.clauses.push_back(UnitClause(index, unit));
      });
    } else if (condition.is_null()) {
      node.clauses.push_back(ConstantClause(Clause::Kind::kThrow));
    }
    return node;  // a number or a boolean has no entries: it matches
  }

 private:
  Clause CompileClause(const std::string& key, const Json& value, const std::string& where) {
    std::string here = Member(where, key);
    if (key == "$and") return CompileList(Clause::Kind::kAnd, value, here);
    if (key == "$or") return CompileList(Clause::Kind::kOr, value, here);
    if (key == "$nor") return CompileList(Clause::Kind::kNor, value, here);
    Clause clause;
    if (key == "$not") {
      clause.kind = Clause::Kind::kNot;
      clause.children.push_back(CompileNode(value, here));
      return clause;
    }
    // Any other key is an attribute path, "$groups" included; an operator here is a mistake.
    clause.kind = Clause::Kind::kPath;
    clause.path = SplitPath(key);
    if (strict_) {
      if (IsValueOperator(key))
        Refuse(here,
               Quoted(key) + " is an operator, not an attribute: write {\"attribute\": {" + Quoted(key) + ": ...}}");
      for (const std::string& part : clause.path)
        if (part.empty()) Refuse(where, "has an attribute path with an empty part: " + Quoted(key));
    }
    clause.matcher.push_back(CompileMatcher(value, false, here));
    return clause;
  }

  // $and, $or, $nor: an array of conditions. Otherwise JavaScript loops over `conditions.length`.
  Clause CompileList(Clause::Kind kind, const Json& list, const std::string& here) {
    Clause clause;
    clause.kind = kind;
    if (list.is_array()) {
      for (std::size_t i = 0; i < list.size(); ++i) clause.children.push_back(CompileNode(list[i], Element(here, i)));
      return clause;
    }
    if (strict_) Refuse(here, "operand must be an array of conditions");
    if (list.is_string()) {  // each character is a condition {"0": character}
      ForEachUtf16Unit(list.get_ref<const std::string&>(), [&](std::size_t, auto unit) {
        Spend();
        Condition::Node child;
        child.clauses.push_back(UnitClause(0, unit));
        clause.children.push_back(std::move(child));
      });
      return clause;
    }
    if (list.is_null()) return ConstantClause(Clause::Kind::kThrow);
    // No length: evalOr returns true at once and evalAnd loops zero times.
    return ConstantClause(kind == Clause::Kind::kNor ? Clause::Kind::kFalse : Clause::Kind::kTrue);
  }

  // evalConditionValue's condition; `insensitive` inside $alli, where it lowercases string literals only.
  Matcher CompileMatcher(const Json& value, bool insensitive, const std::string& here) {
    Matcher matcher;
    switch (value.type()) {
      case Json::value_t::string:
        if (insensitive) {
          matcher.kind = Matcher::Kind::kTextInsensitive;
          matcher.text = ConstantText(Lowercase(value.get_ref<const std::string&>()));
        } else {
          matcher.kind = Matcher::Kind::kText;
          matcher.text = ConstantText(value.get<std::string>());
        }
        return matcher;
      case Json::value_t::number_integer:
      case Json::value_t::number_unsigned:
      case Json::value_t::number_float:
        matcher.kind = Matcher::Kind::kNumber;
        matcher.number = JsonNumber(value);
        return matcher;
      case Json::value_t::boolean:
        matcher.kind = Matcher::Kind::kBoolean;
        matcher.boolean = value.get<bool>();
        return matcher;
      case Json::value_t::null:
        matcher.kind = Matcher::Kind::kNull;
        return matcher;
      default:
        break;
    }
    if (IsOperatorObject(value)) {
      matcher.kind = Matcher::Kind::kOperators;
      for (auto it = value.begin(); it != value.end(); ++it)
        matcher.operations.push_back(CompileOperation(it.key(), it.value(), here));
      return matcher;
    }
    if (strict_ && value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it)
        if (!it.key().empty() && it.key()[0] == '$')
          Refuse(here, "operator " + Quoted(it.key()) +
                           " mixed with other keys (GrowthBook would compare the object as a literal)");
    }
    matcher.kind = Matcher::Kind::kLiteral;
    matcher.literal = value;
    return matcher;
  }

  Operation CompileOperation(const std::string& name, const Json& operand, const std::string& attribute) {
    std::string here = Member(attribute, name);
    Operation operation;
    auto constant = [&operation](bool result) {
      operation.op = Op::kConstant;
      operation.constant = result;
      return operation;
    };
    if (name == "$eq" || name == "$ne") {
      // === against an array or object written in the condition: never the same object
      if (!IsScalar(operand)) {
        if (strict_) Refuse(here, "operand must be a string, number, boolean or null");
        return constant(name == "$ne");
      }
      operation.op = name == "$eq" ? Op::kEq : Op::kNe;
      operation.scalar = operand;
      return operation;
    }
    if (name == "$lt" || name == "$lte" || name == "$gt" || name == "$gte") {
      if (strict_ && !operand.is_number() && !operand.is_string()) Refuse(here, "operand must be a number or a string");
      operation.op = name == "$lt" ? Op::kLt : name == "$lte" ? Op::kLte : name == "$gt" ? Op::kGt : Op::kGte;
      SmallText buffer;
      Primitive bound = ToPrimitive(Value::Of(operand), buffer);
      operation.bound_is_string = bound.is_string;
      operation.text.assign(bound.text);
      operation.bound_number = bound.is_string ? StringToNumber(bound.text) : bound.number;
      return operation;
    }
    if (name.size() >= 4 && name.compare(0, 2, "$v") == 0 &&
        (name == "$veq" || name == "$vne" || name == "$vgt" || name == "$vgte" || name == "$vlt" || name == "$vlte")) {
      if (strict_ && !operand.is_string()) Refuse(here, "operand must be a version string");
      operation.op = name == "$veq"    ? Op::kVeq
                     : name == "$vne"  ? Op::kVne
                     : name == "$vgt"  ? Op::kVgt
                     : name == "$vgte" ? Op::kVgte
                     : name == "$vlt"  ? Op::kVlt
                                       : Op::kVlte;
      operation.text = PaddedVersion(operand);
      ParseShortVersion(Value::Of(operand), operation.version);
      return operation;
    }
    if (name == "$exists") {
      operation.op = Op::kExists;
      operation.constant = JsTruthy(operand);
      return operation;
    }
    if (name == "$in" || name == "$nin" || name == "$ini" || name == "$nini") {
      if (!operand.is_array()) {
        if (strict_) Refuse(here, "operand must be an array");
        return constant(false);  // $nin too
      }
      if (strict_)
        for (std::size_t i = 0; i < operand.size(); ++i)
          if (!IsScalar(operand[i])) Refuse(Element(here, i), "must be a string, number, boolean or null");
      operation.op = name == "$in" || name == "$ini" ? Op::kIn : Op::kNotIn;
      operation.values = MakeValueSet(operand, name == "$ini" || name == "$nini");
      return operation;
    }
    if (name == "$all" || name == "$alli") {
      if (!operand.is_array()) {
        if (strict_) Refuse(here, "operand must be an array");
        return constant(false);
      }
      operation.op = Op::kAll;
      for (std::size_t i = 0; i < operand.size(); ++i)
        operation.matchers.push_back(CompileMatcher(operand[i], name == "$alli", Element(here, i)));
      return operation;
    }
    if (name == "$inGroup" || name == "$notInGroup") return CompileGroup(name == "$inGroup", operand, here);
    if (name == "$not") {
      operation.op = Op::kNot;
      operation.matchers.push_back(CompileMatcher(operand, false, here));
      return operation;
    }
    if (name == "$size") {
      if (strict_ && !operand.is_number() && !IsOperatorObject(operand))
        Refuse(here, "operand must be a number or operators such as {\"$gt\": 2}");
      operation.op = Op::kSize;
      operation.matchers.push_back(CompileMatcher(operand, false, here));
      return operation;
    }
    if (name == "$elemMatch") {
      if (strict_ && !operand.is_object()) Refuse(here, "operand must be an object");
      operation.op = Op::kElemMatch;
      if (IsOperatorObject(operand)) {
        operation.matchers.push_back(CompileMatcher(operand, false, here));
      } else if (operand.is_null()) {
        operation.throws = true;  // Object.keys(null)
      } else {
        operation.condition.push_back(CompileNode(operand, here));
      }
      return operation;
    }
    if (name == "$regex" || name == "$regexi") {
      // JavaScript's TypeError (no replace() on a non-string) and SyntaxError are caught: false
      if (!operand.is_string()) {
        if (strict_) Refuse(here, "operand must be a string");
        return constant(false);
      }
      const std::string& pattern = operand.get_ref<const std::string&>();
      operation.regex = regex_.Compile(pattern, name == "$regexi");
      if (!operation.regex) {
        if (strict_) Refuse(here, "invalid regular expression " + Quoted(pattern));
        return constant(false);
      }
      operation.op = Op::kRegex;
      return operation;
    }
    if (name == "$type") {
      std::optional<JsType> type = ParseTypeName(operand);
      if (!type) {
        if (strict_)
          Refuse(here,
                 "operand must be one of \"string\", \"number\", \"boolean\", \"array\", \"object\", \"null\", "
                 "\"undefined\"");
        return constant(false);
      }
      operation.op = Op::kType;
      operation.type = *type;
      return operation;
    }
    if (strict_)
      Refuse(attribute, "unknown operator " + Quoted(name), "The operators are " + std::string(kOperatorNames) + ".");
    return constant(false);
  }

  // savedGroups[operand] || [], resolved now: the saved groups are given at compilation.
  Operation CompileGroup(bool in_group, const Json& operand, const std::string& here) {
    if (strict_ && !operand.is_string()) Refuse(here, "operand must be the name of a saved group");
    std::string group_name = JsString(operand);  // a property key is String(operand)
    const Json* group = nullptr;
    if (saved_groups_.is_object()) {
      auto found = saved_groups_.find(group_name);
      if (found != saved_groups_.end()) group = &*found;
    }
    if (strict_ && group == nullptr) Refuse(here, "unknown saved group " + Quoted(group_name));
    if (strict_ && !group->is_array()) Refuse(here, "saved group " + Quoted(group_name) + " is not an array");
    Operation operation;
    operation.op = in_group ? Op::kIn : Op::kNotIn;
    if (group != nullptr && group->is_array()) {
      operation.values = MakeValueSet(*group, false);
    } else if (group == nullptr || !JsTruthy(*group)) {
      operation.values = MakeValueSet(Json::array(), false);
    } else if (group->is_string()) {
      auto text = std::make_shared<ValueSet>();
      text->text = group->get<std::string>();  // String.prototype.includes
      operation.values = std::move(text);
    } else {
      auto broken = std::make_shared<ValueSet>();
      broken->throws = true;  // once includes() is called: not for an empty array attribute
      operation.values = std::move(broken);
    }
    return operation;
  }

  void Spend() {
    if (++values_ > kMaxConditionValues) TooLarge();
  }

  [[noreturn]] void Refuse(const std::string& where, const std::string& problem, std::string hint = {}) const {
    throw Error(ErrorKind::kInvalidParameter,
                where.empty() ? "condition " + problem : "condition at " + where + ": " + problem, {}, std::move(hint));
  }

  const Json& saved_groups_;
  RegexEngine& regex_;
  bool strict_;
  int values_;
};

}  // namespace

AttributeValue AttributeValue::Of(const Json& value) {
  AttributeValue result;
  switch (value.type()) {
    case Json::value_t::boolean:
      return Boolean(value.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return Number(JsonNumber(value));
    case Json::value_t::string:
      return String(value.get_ref<const std::string&>());
    case Json::value_t::array:
      result.type = Type::kArray;
      result.json = &value;
      return result;
    case Json::value_t::object:
    case Json::value_t::binary:
      result.type = Type::kObject;
      result.json = &value;
      return result;
    default:
      return result;
  }
}

std::optional<AttributeValue> JsonAttributes::Find(const std::vector<std::string>& path) {
  return ValueAt(*document_, path);
}

namespace {

// The top-level keys read by the clauses of `node` and of its $and, $or, $nor and $not,
// which all look up the user's attributes ($elemMatch's conditions read array elements).
void CollectKeys(const Condition::Node& node, std::vector<std::string>& keys) {
  for (const Clause& clause : node.clauses) {
    if (clause.kind == Clause::Kind::kPath) keys.push_back(clause.path[0]);
    for (const Condition::Node& child : clause.children) CollectKeys(child, keys);
  }
}

void AssignSlots(Condition::Node& node, const std::vector<std::string>& keys) {
  for (Clause& clause : node.clauses) {
    if (clause.kind == Clause::Kind::kPath)
      clause.slot = static_cast<std::size_t>(std::find(keys.begin(), keys.end(), clause.path[0]) - keys.begin());
    for (Condition::Node& child : clause.children) AssignSlots(child, keys);
  }
}

// Shortest first, then bytewise: how jsonb orders an object's keys.
bool JsonbKeyOrder(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

}  // namespace

Condition::Condition() = default;

Condition Condition::Compile(const Json& condition, const Json& saved_groups, RegexEngine& regex, ConditionMode mode) {
  int values = 0;
  Measure(condition, 1, values);
  if (mode == ConditionMode::kStrict && !saved_groups.is_object() && !saved_groups.is_null())
    throw Error(ErrorKind::kInvalidParameter, "saved groups must be a JSON object");
  Compiler compiler(saved_groups, regex, mode, values);
  Node root = compiler.CompileNode(condition, "");
  auto keys = std::make_shared<std::vector<std::string>>();
  CollectKeys(root, *keys);
  std::sort(keys->begin(), keys->end(), JsonbKeyOrder);
  keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
  AssignSlots(root, *keys);
  return Condition(std::make_shared<const Node>(std::move(root)), std::move(keys));
}

bool Condition::Matches(AttributeSource& attributes) const {
  if (root_ == nullptr) return true;
  if (!keys_->empty()) attributes.Prepare(*keys_);
  try {
    return EvalNode(*root_, Scope{&attributes, nullptr});
  } catch (const JsTypeError&) {
    return false;  // GrowthBook's evalCondition throws: the user is not targeted
  }
}

bool Condition::empty() const { return root_ == nullptr || root_->clauses.empty(); }

}  // namespace abtest
