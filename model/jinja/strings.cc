#include "model/jinja/strings.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace layerpool::jinja {

namespace {

// The bytes of the code point starting at byte i (a stray byte is one).
size_t CharBytes(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - i);
}

}  // namespace

std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += CharBytes(s, i)) out.push_back(s.substr(i, CharBytes(s, i)));
  return out;
}

size_t CharCount(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += CharBytes(s, i)) ++n;
  return n;
}

std::string CharAt(const std::string& s, size_t index) {
  for (size_t i = 0; i < s.size(); i += CharBytes(s, i)) {
    if (index-- == 0) return s.substr(i, CharBytes(s, i));
  }
  return "";
}

std::string Strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::string set = chars.is_string() ? chars.str() : std::string(kWhitespace);
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && set.find(s[b]) != std::string::npos) ++b;
  }
  if (right) {
    while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
  }
  return s.substr(b, e - b);
}

absl::StatusOr<Value> Split(const std::string& s, const Value& sep, const Value& maxsplit) {
  int64_t limit = maxsplit.is_integer() ? maxsplit.AsInt() : -1;
  std::vector<Value> parts;
  if (sep.is_undefined() || sep.is_none()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && kWhitespace.find(s[i]) != std::string::npos) ++i;
      if (i >= s.size()) break;
      if (limit == 0) {
        parts.push_back(Value::String(Strip(s.substr(i), Value(), false, true)));
        break;
      }
      size_t e = i;
      while (e < s.size() && kWhitespace.find(s[e]) == std::string::npos) ++e;
      parts.push_back(Value::String(s.substr(i, e - i)));
      --limit;
      i = e;
    }
    return Value::List(std::move(parts));
  }
  if (!sep.is_string()) return absl::InvalidArgumentError("split: the separator must be a string");
  if (sep.str().empty()) return absl::InvalidArgumentError("split: empty separator");
  size_t i = 0;
  while (true) {
    const size_t at = limit == 0 ? std::string::npos : s.find(sep.str(), i);
    if (at == std::string::npos) {
      parts.push_back(Value::String(s.substr(i)));
      break;
    }
    parts.push_back(Value::String(s.substr(i, at - i)));
    i = at + sep.str().size();
    --limit;
  }
  return Value::List(std::move(parts));
}

absl::Status TooLarge(absl::string_view what) {
  return absl::ResourceExhaustedError(absl::StrCat(what, ": the result passes 16 MiB"));
}

absl::StatusOr<std::string> Replace(const std::string& s, const std::string& from,
                                    const std::string& to, int64_t count) {
  if (from.empty()) return s;  // Python would insert `to` between characters; templates don't
  std::string out;
  size_t i = 0;
  while (count != 0) {
    const size_t at = s.find(from, i);
    if (at == std::string::npos) break;
    out.append(s, i, at - i).append(to);
    if (out.size() > kMaxValueBytes) return TooLarge("replace");
    i = at + from.size();
    --count;
  }
  return out.append(s, i);
}

std::string Capitalize(const std::string& s) {
  std::string out = absl::AsciiStrToLower(s);
  if (!out.empty()) out[0] = absl::ascii_toupper(out[0]);
  return out;
}

std::string Title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (absl::ascii_isalpha(c)) {
      c = start ? absl::ascii_toupper(c) : absl::ascii_tolower(c);
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

absl::StatusOr<std::string> Indent(std::string s, int64_t width, bool first, bool blank) {
  if (width > static_cast<int64_t>(kMaxValueBytes)) return TooLarge("indent");
  const std::string pad(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  s += "\n";
  std::vector<std::string> lines;
  for (size_t i = 0; i < s.size();) {
    const size_t nl = s.find('\n', i);
    lines.push_back(s.substr(i, nl - i));
    i = nl + 1;
  }
  if (lines.size() * pad.size() + s.size() > kMaxValueBytes) return TooLarge("indent");
  std::string rv;
  if (blank) {
    rv = absl::StrJoin(lines, "\n" + pad);
  } else {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n" + (lines[i].empty() ? "" : pad + lines[i]);
    }
  }
  return first ? pad + rv : rv;
}

}  // namespace layerpool::jinja
