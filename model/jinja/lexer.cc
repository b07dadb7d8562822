// The template lexer, following jinja2's lexer.py: the same whitespace
// rules, and string literals decoded as Python's unicode-escape does.

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/jinja/lexer.h"

namespace layerpool::jinja {

absl::Status SyntaxError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrFormat("template line %d: %s", line, message));
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's unicode-escape decoding of a string literal's body.
absl::Status Unescape(std::string_view body, int line, std::string* out) {
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      *out += body[i];
      continue;
    }
    const char c = body[++i];
    auto hex = [&](size_t n) -> absl::Status {
      if (i + n >= body.size()) {
        return SyntaxError(line, "truncated \\x, \\u or \\U escape");
      }
      const std::string digits(body.substr(i + 1, n));
      char* end = nullptr;
      const unsigned long cp = std::strtoul(digits.c_str(), &end, 16);
      if (digits.size() != n || *end != '\0' || cp > 0x10FFFF) {
        return SyntaxError(line, "bad \\x, \\u or \\U escape");
      }
      i += n;
      // UTF-8 encode.
      if (cp < 0x80) {
        *out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        *out += static_cast<char>(0xC0 | (cp >> 6));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *out += static_cast<char>(0xE0 | (cp >> 12));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        *out += static_cast<char>(0xF0 | (cp >> 18));
        *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      }
      return absl::OkStatus();
    };
    switch (c) {
      case 'n': *out += '\n'; break;
      case 't': *out += '\t'; break;
      case 'r': *out += '\r'; break;
      case '\\': *out += '\\'; break;
      case '\'': *out += '\''; break;
      case '"': *out += '"'; break;
      case 'a': *out += '\a'; break;
      case 'b': *out += '\b'; break;
      case 'f': *out += '\f'; break;
      case 'v': *out += '\v'; break;
      case '0': *out += '\0'; break;
      case '\n': break;  // a backslash-newline continues the line
      case 'x': LP_RETURN_IF_ERROR(hex(2)); break;
      case 'u': LP_RETURN_IF_ERROR(hex(4)); break;
      case 'U': LP_RETURN_IF_ERROR(hex(8)); break;
      default:  // unknown escapes stay as written
        *out += '\\';
        *out += c;
    }
  }
  return absl::OkStatus();
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  absl::StatusOr<std::vector<Piece>> Run() {
    std::vector<Piece> pieces;
    size_t pos = 0;
    bool strip_next = false;
    while (pos < src_.size()) {
      size_t tag = src_.find('{', pos);
      while (tag != std::string::npos &&
             (tag + 1 >= src_.size() ||
              (src_[tag + 1] != '{' && src_[tag + 1] != '%' && src_[tag + 1] != '#'))) {
        tag = src_.find('{', tag + 1);
      }
      if (tag == std::string::npos) tag = src_.size();
      size_t text_begin = pos;
      if (strip_next) {
        while (text_begin < tag && IsSpace(src_[text_begin])) ++text_begin;
        strip_next = false;
      }
      const bool line_starting = text_begin == 0 || src_[text_begin - 1] == '\n';
      std::string text = src_.substr(text_begin, tag - text_begin);
      if (tag == src_.size()) {
        AddText(&pieces, std::move(text), tag);
        break;
      }
      const char kind = src_[tag + 1];
      size_t p = tag + 2;
      const char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign != 0) ++p;
      if (sign == '-') {
        while (!text.empty() && IsSpace(text.back())) text.pop_back();
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks
        const size_t line_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_pos > 0 || line_starting) {
          bool blank = true;
          for (size_t i = line_pos; i < text.size(); ++i) blank = blank && IsSpace(text[i]);
          if (blank) text.resize(line_pos);
        }
      }
      AddText(&pieces, std::move(text), tag);
      const int line = LineOf(tag);

      char end_sign = 0;
      if (kind == '#') {
        const size_t end = src_.find("#}", p);
        if (end == std::string::npos) return SyntaxError(line, "comment never closed with #}");
        if (end > p && (src_[end - 1] == '-' || src_[end - 1] == '+')) end_sign = src_[end - 1];
        pos = end + 2;
      } else {
        Piece piece{kind == '{' ? Piece::Type::kOutput : Piece::Type::kBlock, line, "", {}};
        LP_ASSIGN_OR_RETURN(pos, Tokens(p, kind == '{' ? '}' : '%', line, &piece.tokens, &end_sign));
        pieces.push_back(std::move(piece));
      }
      if (end_sign == '-') {
        strip_next = true;
      } else if (kind != '{' && end_sign != '+' && pos < src_.size() && src_[pos] == '\n') {
        ++pos;  // trim_blocks
      }
    }
    return pieces;
  }

 private:
  void AddText(std::vector<Piece>* pieces, std::string text, size_t at) {
    if (!text.empty()) pieces->push_back({Piece::Type::kText, LineOf(at), std::move(text), {}});
  }

  int LineOf(size_t pos) {
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_) {
      if (src_[line_pos_] == '\n') ++line_;
    }
    return line_;
  }

  // Reads the tokens of a tag from `p` up to its closing `close`} at bracket
  // depth 0; returns the position after it.
  absl::StatusOr<size_t> Tokens(size_t p, char close, int line, std::vector<Token>* out,
                                char* end_sign) {
    int depth = 0;
    static constexpr std::string_view kOps[] = {"//", "**", "==", "!=", "<=", ">=",
                                                "+", "-", "*", "/", "%", "~", "<", ">",
                                                "(", ")", "[", "]", "{", "}", ",", ".",
                                                ":", "|", "="};
    while (true) {
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      if (p >= src_.size()) {
        return SyntaxError(line, absl::StrFormat("tag never closed with %c}", close));
      }
      if (depth == 0) {
        for (char sign : {'-', '+', '\0'}) {
          const std::string end = sign ? absl::StrCat(std::string(1, sign), std::string(1, close), "}")
                                       : absl::StrCat(std::string(1, close), "}");
          if (src_.compare(p, end.size(), end) == 0 && (sign != '+' || close == '%')) {
            *end_sign = sign;
            return p + end.size();
          }
        }
      }
      const char c = src_[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        out->push_back({Token::Type::kName, src_.substr(p, e - p)});
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = p;
        bool is_float = false;
        while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          for (++e; e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_');) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          size_t x = e + 1;
          if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
          if (x < src_.size() && std::isdigit(static_cast<unsigned char>(src_[x]))) {
            is_float = true;
            for (e = x; e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]));) ++e;
          }
        }
        std::string digits;
        for (size_t k = p; k < e; ++k) {
          if (src_[k] != '_') digits += src_[k];
        }
        Token t{is_float ? Token::Type::kFloat : Token::Type::kInt, digits};
        if (is_float) {
          t.f = std::strtod(digits.c_str(), nullptr);
        } else {
          errno = 0;
          t.i = std::strtoll(digits.c_str(), nullptr, 10);
          if (errno == ERANGE) return SyntaxError(line, "integer literal out of range");
        }
        out->push_back(std::move(t));
        p = e;
      } else if (c == '\'' || c == '"') {
        size_t e = p + 1;
        while (e < src_.size() && src_[e] != c) e += src_[e] == '\\' ? 2 : 1;
        if (e >= src_.size()) return SyntaxError(line, "string literal never closed");
        Token t{Token::Type::kString, ""};
        LP_RETURN_IF_ERROR(Unescape(std::string_view(src_).substr(p + 1, e - p - 1), line, &t.text));
        out->push_back(std::move(t));
        p = e + 1;
      } else {
        bool matched = false;
        for (std::string_view op : kOps) {
          if (src_.compare(p, op.size(), op) == 0) {
            if (op == "(" || op == "[" || op == "{") ++depth;
            if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
            out->push_back({Token::Type::kOp, std::string(op)});
            p += op.size();
            matched = true;
            break;
          }
        }
        if (!matched) return SyntaxError(line, absl::StrFormat("unexpected character '%c'", c));
      }
    }
  }

  std::string src_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

absl::StatusOr<std::vector<Piece>> Lex(std::string source) {
  return Lexer(std::move(source)).Run();
}

}  // namespace layerpool::jinja
