// Lexing and parsing, following jinja2's lexer.py and parser.py: the same
// whitespace rules (trim_blocks, lstrip_blocks, `-` and `+` markers, one
// trailing newline dropped) and the same operator precedence (filters and
// tests bind tighter than arithmetic; `~` between + and *).

#include <cctype>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/jinja/ast.h"
#include "model/jinja/parse.h"

namespace layerpool::jinja {
namespace {

// ---------------------------------------------------------------- tokens

struct Token {
  enum class Type { kName, kString, kInt, kFloat, kOp };
  Type type;
  std::string text;  // name, operator, or the decoded string
  int64_t i = 0;
  double f = 0;
};

// A piece of the template: literal text, or the tokens inside a tag.
struct Piece {
  enum class Type { kText, kOutput, kBlock };
  Type type;
  int line;
  std::string text;
  std::vector<Token> tokens;
};

absl::Status SyntaxError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrFormat("template line %d: %s", line, message));
}

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

// ---------------------------------------------------------------- expressions

class ExprParser {
 public:
  ExprParser(const std::vector<Token>& tokens, int line) : t_(tokens), line_(line) {}

  bool AtEnd() const { return i_ >= t_.size(); }
  bool IsName(std::string_view name, size_t ahead = 0) const {
    return i_ + ahead < t_.size() && t_[i_ + ahead].type == Token::Type::kName &&
           t_[i_ + ahead].text == name;
  }
  bool IsOp(std::string_view op) const {
    return i_ < t_.size() && t_[i_].type == Token::Type::kOp && t_[i_].text == op;
  }
  absl::Status Error(std::string_view what) const {
    return SyntaxError(line_, absl::StrCat(std::string(what), AtEnd() ? " at the end of the tag"
                                                         : absl::StrCat(" near '", t_[i_].text, "'")));
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!IsOp(op)) return Error(absl::StrCat("expected '", std::string(op), "'"));
    ++i_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Name() {
    if (AtEnd() || t_[i_].type != Token::Type::kName) return Error("expected a name");
    return t_[i_++].text;
  }
  absl::Status ExpectEnd() const {
    return AtEnd() ? absl::OkStatus() : Error("unexpected text");
  }

  // expression: condition (with inline if)
  absl::StatusOr<ExprPtr> Expression() {
    LP_ASSIGN_OR_RETURN(ExprPtr value, Or());
    while (IsName("if")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr cond, Or());
      ExprPtr otherwise;
      if (IsName("else")) {
        ++i_;
        LP_ASSIGN_OR_RETURN(otherwise, Expression());
      }
      value = Make(Expr::Kind::kCond, std::move(cond), std::move(value), std::move(otherwise));
    }
    return value;
  }

  // A comma-separated list of expressions; several make a tuple (a list).
  absl::StatusOr<ExprPtr> TupleOrExpression() {
    LP_ASSIGN_OR_RETURN(ExprPtr first, Expression());
    if (!IsOp(",")) return first;
    ExprPtr tuple = Make(Expr::Kind::kList);
    tuple->args.push_back(std::move(first));
    while (IsOp(",")) {
      ++i_;
      if (AtEnd()) break;
      LP_ASSIGN_OR_RETURN(ExprPtr e, Expression());
      tuple->args.push_back(std::move(e));
    }
    return tuple;
  }

 private:
  ExprPtr Make(Expr::Kind kind, ExprPtr a = nullptr, ExprPtr b = nullptr, ExprPtr c = nullptr) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line_;
    for (ExprPtr* p : {&a, &b, &c}) {
      if (*p || kind == Expr::Kind::kCond || kind == Expr::Kind::kSlice) e->args.push_back(std::move(*p));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> Or() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, And());
    while (IsName("or")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr right, And());
      left = Make(Expr::Kind::kOr, std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> And() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Not());
    while (IsName("and")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr right, Not());
      left = Make(Expr::Kind::kAnd, std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Not() {
    if (IsName("not")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr operand, Not());
      return Make(Expr::Kind::kNot, std::move(operand));
    }
    return Compare();
  }
  absl::StatusOr<ExprPtr> Compare() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Math1());
    while (true) {
      std::string op;
      bool negate = false;
      if (IsOp("==") || IsOp("!=") || IsOp("<") || IsOp(">") || IsOp("<=") || IsOp(">=")) {
        op = t_[i_++].text;
      } else if (IsName("in")) {
        op = "in";
        ++i_;
      } else if (IsName("not") && IsName("in", 1)) {
        op = "in";
        negate = true;
        i_ += 2;
      } else {
        return left;
      }
      LP_ASSIGN_OR_RETURN(ExprPtr right, Math1());
      left = Binary(op, std::move(left), std::move(right));
      left->negate = negate;
    }
  }
  ExprPtr Binary(const std::string& op, ExprPtr a, ExprPtr b) {
    ExprPtr e = Make(Expr::Kind::kBinary, std::move(a), std::move(b));
    e->name = op;
    return e;
  }
  absl::StatusOr<ExprPtr> Math1() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Concat());
    while (IsOp("+") || IsOp("-")) {
      const std::string op = t_[i_++].text;
      LP_ASSIGN_OR_RETURN(ExprPtr right, Concat());
      left = Binary(op, std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Concat() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Math2());
    while (IsOp("~")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr right, Math2());
      left = Binary("~", std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Math2() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Pow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = t_[i_++].text;
      LP_ASSIGN_OR_RETURN(ExprPtr right, Pow());
      left = Binary(op, std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Pow() {
    LP_ASSIGN_OR_RETURN(ExprPtr left, Unary(true));
    while (IsOp("**")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr right, Unary(true));
      left = Binary("**", std::move(left), std::move(right));
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Unary(bool with_filter) {
    ExprPtr node;
    if (IsOp("-")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(ExprPtr operand, Unary(false));
      node = Make(Expr::Kind::kNeg, std::move(operand));
    } else if (IsOp("+")) {
      ++i_;
      LP_ASSIGN_OR_RETURN(node, Unary(false));
    } else {
      LP_ASSIGN_OR_RETURN(node, Primary());
    }
    LP_ASSIGN_OR_RETURN(node, Postfix(std::move(node)));
    if (with_filter) {
      LP_ASSIGN_OR_RETURN(node, FilterExpr(std::move(node)));
    }
    return node;
  }

  absl::StatusOr<ExprPtr> Primary() {
    if (AtEnd()) return Error("expected an expression");
    const Token& t = t_[i_];
    switch (t.type) {
      case Token::Type::kName: {
        ++i_;
        ExprPtr e = Make(Expr::Kind::kLiteral);
        if (t.text == "true" || t.text == "True") {
          e->value = Value::Bool(true);
        } else if (t.text == "false" || t.text == "False") {
          e->value = Value::Bool(false);
        } else if (t.text == "none" || t.text == "None") {
          e->value = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case Token::Type::kString: {
        std::string s;
        while (!AtEnd() && t_[i_].type == Token::Type::kString) s += t_[i_++].text;
        ExprPtr e = Make(Expr::Kind::kLiteral);
        e->value = Value::String(std::move(s));
        return e;
      }
      case Token::Type::kInt:
      case Token::Type::kFloat: {
        ++i_;
        ExprPtr e = Make(Expr::Kind::kLiteral);
        e->value = t.type == Token::Type::kInt ? Value::Int(t.i) : Value::Float(t.f);
        return e;
      }
      case Token::Type::kOp: break;
    }
    if (IsOp("(")) {
      ++i_;
      if (IsOp(")")) {  // the empty tuple
        ++i_;
        return Make(Expr::Kind::kList);
      }
      LP_ASSIGN_OR_RETURN(ExprPtr e, TupleOrExpression());
      LP_RETURN_IF_ERROR(ExpectOp(")"));
      return e;
    }
    if (IsOp("[")) {
      ++i_;
      ExprPtr list = Make(Expr::Kind::kList);
      while (!IsOp("]")) {
        if (!list->args.empty()) LP_RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp("]")) break;
        LP_ASSIGN_OR_RETURN(ExprPtr e, Expression());
        list->args.push_back(std::move(e));
      }
      ++i_;
      return list;
    }
    if (IsOp("{")) {
      ++i_;
      ExprPtr dict = Make(Expr::Kind::kDict);
      while (!IsOp("}")) {
        if (!dict->args.empty()) LP_RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp("}")) break;
        LP_ASSIGN_OR_RETURN(ExprPtr key, Expression());
        LP_RETURN_IF_ERROR(ExpectOp(":"));
        LP_ASSIGN_OR_RETURN(ExprPtr value, Expression());
        dict->args.push_back(std::move(key));
        dict->args.push_back(std::move(value));
      }
      ++i_;
      return dict;
    }
    return Error("expected an expression");
  }

  absl::StatusOr<ExprPtr> Postfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        ++i_;
        if (!AtEnd() && t_[i_].type == Token::Type::kInt) {  // x.0 is x[0]
          ExprPtr index = Make(Expr::Kind::kLiteral);
          index->value = Value::Int(t_[i_++].i);
          node = Make(Expr::Kind::kItem, std::move(node), std::move(index));
          continue;
        }
        LP_ASSIGN_OR_RETURN(std::string name, Name());
        node = Make(Expr::Kind::kAttr, std::move(node));
        node->name = std::move(name);
      } else if (IsOp("[")) {
        ++i_;
        LP_ASSIGN_OR_RETURN(node, Subscript(std::move(node)));
      } else if (IsOp("(")) {
        LP_ASSIGN_OR_RETURN(node, Call(Make(Expr::Kind::kCall, std::move(node))));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> Subscript(ExprPtr node) {
    ExprPtr parts[3];
    int part = 0;
    bool slice = false;
    while (!IsOp("]")) {
      if (IsOp(":")) {
        slice = true;
        if (++part > 2) return Error("a slice has at most three parts");
        ++i_;
        continue;
      }
      LP_ASSIGN_OR_RETURN(parts[part], Expression());
      if (!IsOp(":") && !IsOp("]")) return Error("expected ']'");
    }
    ++i_;
    if (!slice) {
      if (!parts[0]) return Error("empty subscript");
      return Make(Expr::Kind::kItem, std::move(node), std::move(parts[0]));
    }
    auto e = Make(Expr::Kind::kSlice);
    e->args.clear();
    e->args.push_back(std::move(node));
    for (ExprPtr& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  // Reads "(args, name=value, ...)" into `call` (its args[0] is the callee
  // or filtered value).
  absl::StatusOr<ExprPtr> Call(ExprPtr call) {
    LP_RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!IsOp(")")) {
      if (!first) LP_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (IsOp(")")) break;
      if (!AtEnd() && t_[i_].type == Token::Type::kName && i_ + 1 < t_.size() &&
          t_[i_ + 1].type == Token::Type::kOp && t_[i_ + 1].text == "=") {
        std::string name = t_[i_].text;
        i_ += 2;
        LP_ASSIGN_OR_RETURN(ExprPtr value, Expression());
        call->kwargs.emplace_back(std::move(name), std::move(value));
      } else {
        if (!call->kwargs.empty()) return Error("a positional argument after a keyword one");
        LP_ASSIGN_OR_RETURN(ExprPtr value, Expression());
        call->args.push_back(std::move(value));
      }
    }
    ++i_;
    return call;
  }

  absl::StatusOr<ExprPtr> FilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        ++i_;
        LP_ASSIGN_OR_RETURN(std::string name, Name());
        while (IsOp(".")) {  // dotted filter names
          ++i_;
          LP_ASSIGN_OR_RETURN(std::string part, Name());
          name += "." + part;
        }
        node = Make(Expr::Kind::kFilter, std::move(node));
        node->name = std::move(name);
        if (IsOp("(")) {
          LP_ASSIGN_OR_RETURN(node, Call(std::move(node)));
        }
      } else if (IsName("is")) {
        ++i_;
        bool negate = false;
        if (IsName("not")) {
          ++i_;
          negate = true;
        }
        LP_ASSIGN_OR_RETURN(std::string name, Name());
        node = Make(Expr::Kind::kTest, std::move(node));
        node->name = std::move(name);
        node->negate = negate;
        if (IsOp("(")) {
          LP_ASSIGN_OR_RETURN(node, Call(std::move(node)));
        } else if (!AtEnd() && (t_[i_].type != Token::Type::kName ||
                                (t_[i_].text != "and" && t_[i_].text != "or" &&
                                 t_[i_].text != "else" && t_[i_].text != "if" &&
                                 t_[i_].text != "is" && t_[i_].text != "in" &&
                                 t_[i_].text != "not")) &&
                   t_[i_].type != Token::Type::kOp) {
          // `x is divisibleby 3`: one argument without parentheses.
          LP_ASSIGN_OR_RETURN(ExprPtr arg, Primary());
          LP_ASSIGN_OR_RETURN(arg, Postfix(std::move(arg)));
          node->args.push_back(std::move(arg));
        }
      } else if (IsOp("(")) {
        LP_ASSIGN_OR_RETURN(node, Call(Make(Expr::Kind::kCall, std::move(node))));
      } else {
        return node;
      }
    }
  }

  const std::vector<Token>& t_;
  int line_;
  size_t i_ = 0;

  friend class StatementParser;
};

// ---------------------------------------------------------------- statements

class StatementParser {
 public:
  explicit StatementParser(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}

  absl::StatusOr<Body> Template() {
    std::string end;
    LP_ASSIGN_OR_RETURN(Body body, ParseBody({}, &end));
    return body;
  }

 private:
  // Parses nodes up to a block tag whose keyword is in `ends` (returned in
  // *end, with the parser left on that tag's remaining tokens).
  absl::StatusOr<Body> ParseBody(const std::vector<std::string_view>& ends, std::string* end) {
    Body body;
    while (next_ < pieces_.size()) {
      Piece& piece = pieces_[next_++];
      if (piece.type == Piece::Type::kText) {
        body.emplace_back(Node::Kind::kText, piece.line, std::move(piece.text));
        continue;
      }
      ExprParser p(piece.tokens, piece.line);
      if (piece.type == Piece::Type::kOutput) {
        Node n(Node::Kind::kOutput, piece.line);
        LP_ASSIGN_OR_RETURN(n.expr, p.TupleOrExpression());
        LP_RETURN_IF_ERROR(p.ExpectEnd());
        body.push_back(std::move(n));
        continue;
      }
      LP_ASSIGN_OR_RETURN(std::string keyword, p.Name());
      for (std::string_view e : ends) {
        if (keyword == e) {
          *end = keyword;
          current_ = &piece;
          consumed_ = p.i_;
          return body;
        }
      }
      LP_ASSIGN_OR_RETURN(Node node, Statement(keyword, p, piece.line));
      body.push_back(std::move(node));
    }
    if (!ends.empty()) {
      return SyntaxError(pieces_.empty() ? 1 : pieces_.back().line,
                         absl::StrCat("the template ended before {% ", std::string(ends.back()), " %}"));
    }
    return body;
  }

  // The tokens after the keyword of the tag that ended the last ParseBody.
  ExprParser Rest() {
    ExprParser p(current_->tokens, current_->line);
    p.i_ = consumed_;
    return p;
  }

  absl::StatusOr<Node> Statement(const std::string& keyword, ExprParser& p, int line) {
    Node n(Node::Kind::kText, line);
    std::string end;
    if (keyword == "if") {
      n.kind = Node::Kind::kIf;
      LP_ASSIGN_OR_RETURN(ExprPtr cond, p.Expression());
      LP_RETURN_IF_ERROR(p.ExpectEnd());
      while (true) {
        LP_ASSIGN_OR_RETURN(Body body, ParseBody({"elif", "else", "endif"}, &end));
        n.branches.emplace_back(std::move(cond), std::move(body));
        ExprParser rest = Rest();
        if (end == "endif") {
          LP_RETURN_IF_ERROR(rest.ExpectEnd());
          break;
        }
        if (end == "else") {
          LP_RETURN_IF_ERROR(rest.ExpectEnd());
          LP_ASSIGN_OR_RETURN(Body otherwise, ParseBody({"endif"}, &end));
          LP_RETURN_IF_ERROR(Rest().ExpectEnd());
          n.branches.emplace_back(nullptr, std::move(otherwise));
          break;
        }
        LP_ASSIGN_OR_RETURN(cond, rest.Expression());
        LP_RETURN_IF_ERROR(rest.ExpectEnd());
      }
      return n;
    }
    if (keyword == "for") {
      n.kind = Node::Kind::kFor;
      do {
        if (!n.targets.empty()) ++p.i_;
        LP_ASSIGN_OR_RETURN(std::string target, p.Name());
        n.targets.push_back(std::move(target));
      } while (p.IsOp(","));
      if (!p.IsName("in")) return p.Error("expected 'in'");
      ++p.i_;
      // The iterable stops before a trailing `if` (the loop filter).
      LP_ASSIGN_OR_RETURN(n.expr, p.Or());
      if (p.IsName("if")) {
        ++p.i_;
        LP_ASSIGN_OR_RETURN(n.filter, p.Expression());
      }
      if (p.IsName("recursive")) return p.Error("recursive loops are not supported");
      LP_RETURN_IF_ERROR(p.ExpectEnd());
      LP_ASSIGN_OR_RETURN(n.body, ParseBody({"else", "endfor"}, &end));
      LP_RETURN_IF_ERROR(Rest().ExpectEnd());
      if (end == "else") {
        LP_ASSIGN_OR_RETURN(n.else_body, ParseBody({"endfor"}, &end));
        LP_RETURN_IF_ERROR(Rest().ExpectEnd());
      }
      return n;
    }
    if (keyword == "set") {
      LP_ASSIGN_OR_RETURN(std::string target, p.Name());
      n.targets.push_back(std::move(target));
      if (p.IsOp(".")) {
        ++p.i_;
        LP_ASSIGN_OR_RETURN(n.attr, p.Name());
      }
      if (p.AtEnd()) {
        n.kind = Node::Kind::kSetBlock;
        LP_ASSIGN_OR_RETURN(n.body, ParseBody({"endset"}, &end));
        LP_RETURN_IF_ERROR(Rest().ExpectEnd());
        return n;
      }
      n.kind = Node::Kind::kSet;
      LP_RETURN_IF_ERROR(p.ExpectOp("="));
      LP_ASSIGN_OR_RETURN(n.expr, p.TupleOrExpression());
      LP_RETURN_IF_ERROR(p.ExpectEnd());
      return n;
    }
    if (keyword == "macro") {
      n.kind = Node::Kind::kMacro;
      LP_ASSIGN_OR_RETURN(std::string name, p.Name());
      n.targets.push_back(std::move(name));
      LP_RETURN_IF_ERROR(p.ExpectOp("("));
      while (!p.IsOp(")")) {
        if (!n.params.empty()) LP_RETURN_IF_ERROR(p.ExpectOp(","));
        LP_ASSIGN_OR_RETURN(std::string param, p.Name());
        ExprPtr def;
        if (p.IsOp("=")) {
          ++p.i_;
          LP_ASSIGN_OR_RETURN(def, p.Expression());
        }
        n.params.emplace_back(std::move(param), std::move(def));
      }
      ++p.i_;
      LP_RETURN_IF_ERROR(p.ExpectEnd());
      LP_ASSIGN_OR_RETURN(n.body, ParseBody({"endmacro"}, &end));
      LP_RETURN_IF_ERROR(Rest().ExpectEnd());
      return n;
    }
    if (keyword == "break" || keyword == "continue") {
      n.kind = keyword == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      LP_RETURN_IF_ERROR(p.ExpectEnd());
      return n;
    }
    return SyntaxError(line, absl::StrCat("{% ", keyword, " %} is not supported here"));
  }

  std::vector<Piece> pieces_;
  size_t next_ = 0;
  Piece* current_ = nullptr;
  size_t consumed_ = 0;
};

}  // namespace

absl::StatusOr<Body> ParseTemplate(std::string_view source) {
  // jinja2 reads the source as lines: \r\n and \r become \n, and one
  // trailing newline is dropped (keep_trailing_newline is off).
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      normalized += source[i];
    }
  }
  if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
  LP_ASSIGN_OR_RETURN(std::vector<Piece> pieces, Lexer(std::move(normalized)).Run());
  return StatementParser(std::move(pieces)).Template();
}

}  // namespace layerpool::jinja
