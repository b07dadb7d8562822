// Parsing, following jinja2's parser.py: the same operator precedence
// (filters and tests bind tighter than arithmetic; `~` between + and *).
// The tokens come from lexer.h.

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/jinja/ast.h"
#include "model/jinja/lexer.h"
#include "model/jinja/parse.h"

namespace layerpool::jinja {
namespace {

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
  LP_ASSIGN_OR_RETURN(std::vector<Piece> pieces, Lex(std::move(normalized)));
  return StatementParser(std::move(pieces)).Template();
}

}  // namespace layerpool::jinja
