// Walks the parsed template. Scoping follows jinja2: a for loop's body is a
// new scope each iteration (a `set` inside it is gone after the iteration,
// which is why templates use namespace()), `if` opens none, a macro call
// sees its parameters and the template's top level.

#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/jinja/builtins.h"
#include "model/jinja/jinja.h"
#include "model/jinja/parse.h"

namespace layerpool::jinja {
namespace {

// Real chat templates take a few thousand steps per conversation.
constexpr int64_t kMaxSteps = 2'000'000;
constexpr size_t kMaxOutputBytes = kMaxValueBytes;
constexpr int kMaxDepth = 200;

absl::Status TypeError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrFormat("template line %d: %s", line, message));
}

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(const Dict& context) { scopes_.push_back(context); }

  absl::StatusOr<Flow> Exec(const Body& body, std::string* out) {
    for (const Node& node : body) {
      LP_RETURN_IF_ERROR(Step(node.line));
      switch (node.kind) {
        case Node::Kind::kText: *out += node.text; break;
        case Node::Kind::kOutput: {
          LP_ASSIGN_OR_RETURN(Value v, Eval(*node.expr));
          *out += v.Str();
          break;
        }
        case Node::Kind::kIf: {
          for (const auto& [cond, branch] : node.branches) {
            bool take = cond == nullptr;
            if (!take) {
              LP_ASSIGN_OR_RETURN(Value c, Eval(*cond));
              take = c.Truthy();
            }
            if (take) {
              LP_ASSIGN_OR_RETURN(Flow f, Exec(branch, out));
              if (f != Flow::kNormal) return f;
              break;
            }
          }
          break;
        }
        case Node::Kind::kFor: LP_RETURN_IF_ERROR(For(node, out)); break;
        case Node::Kind::kSet: {
          LP_ASSIGN_OR_RETURN(Value v, Eval(*node.expr));
          LP_RETURN_IF_ERROR(Assign(node, std::move(v)));
          break;
        }
        case Node::Kind::kSetBlock: {
          std::string captured;
          LP_ASSIGN_OR_RETURN(Flow f, Exec(node.body, &captured));
          (void)f;
          LP_RETURN_IF_ERROR(Assign(node, Value::String(std::move(captured))));
          break;
        }
        case Node::Kind::kMacro: DefineMacro(node); break;
        case Node::Kind::kBreak: return Flow::kBreak;
        case Node::Kind::kContinue: return Flow::kContinue;
      }
      if (out->size() > kMaxOutputBytes) {
        return absl::ResourceExhaustedError("template output passed 16 MiB");
      }
    }
    return Flow::kNormal;
  }

 private:
  absl::Status Step(int line) {
    if (++steps_ > kMaxSteps) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "template line %d: rendering took more than %d steps", line, kMaxSteps));
    }
    return absl::OkStatus();
  }

  Value Lookup(const std::string& name) const {
    for (size_t i = scopes_.size(); i-- > 0;) {
      if (const Value* v = scopes_[i].Find(name)) return *v;
    }
    return Global(name);
  }

  absl::Status Assign(const Node& node, Value v) {
    if (node.attr.empty()) {
      scopes_.back().Set(node.targets[0], std::move(v));
      return absl::OkStatus();
    }
    Value target = Lookup(node.targets[0]);
    if (!target.is_dict() || !target.dict().is_namespace) {
      return TypeError(node.line, absl::StrCat("cannot set an attribute of '", node.targets[0],
                                               "': it is not a namespace()"));
    }
    target.mutable_dict().Set(node.attr, std::move(v));
    return absl::OkStatus();
  }

  absl::Status For(const Node& node, std::string* out) {
    LP_ASSIGN_OR_RETURN(Value iterable, Eval(*node.expr));
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable),
                        absl::StrFormat("template line %d", node.line));
    // Unpacks an item into the loop's targets.
    auto bind = [&](Dict& scope, const Value& item) -> absl::Status {
      if (node.targets.size() == 1) {
        scope.Set(node.targets[0], item);
        return absl::OkStatus();
      }
      LP_ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(item));
      if (parts.size() != node.targets.size()) {
        return TypeError(node.line, absl::StrFormat("cannot unpack %d values into %d names",
                                                    parts.size(), node.targets.size()));
      }
      for (size_t i = 0; i < parts.size(); ++i) scope.Set(node.targets[i], parts[i]);
      return absl::OkStatus();
    };
    if (node.filter) {
      std::vector<Value> kept;
      for (const Value& item : items) {
        scopes_.emplace_back();
        absl::Status st = bind(scopes_.back(), item);
        absl::StatusOr<Value> keep = st.ok() ? Eval(*node.filter) : st;
        scopes_.pop_back();
        LP_RETURN_IF_ERROR(keep.status());
        if (keep->Truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      LP_ASSIGN_OR_RETURN(Flow f, Exec(node.else_body, out));
      (void)f;
      return absl::OkStatus();
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      LP_RETURN_IF_ERROR(Step(node.line));
      Dict loop;
      loop.Set("index", Value::Int(i + 1));
      loop.Set("index0", Value::Int(i));
      loop.Set("revindex", Value::Int(n - i));
      loop.Set("revindex0", Value::Int(n - i - 1));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == n - 1));
      loop.Set("length", Value::Int(n));
      loop.Set("previtem", i > 0 ? items[i - 1] : Value());
      loop.Set("nextitem", i + 1 < n ? items[i + 1] : Value());
      loop.Set("cycle", Value::MakeFunction([i](const CallArgs& args) -> absl::StatusOr<Value> {
        if (args.positional.empty()) return absl::InvalidArgumentError("loop.cycle: no values");
        return args.positional[i % args.positional.size()];
      }));
      Dict scope;
      scope.Set("loop", Value::MakeDict(std::move(loop)));
      LP_RETURN_IF_ERROR(bind(scope, items[i]));
      scopes_.push_back(std::move(scope));
      absl::StatusOr<Flow> f = Exec(node.body, out);
      scopes_.pop_back();
      LP_RETURN_IF_ERROR(f.status());
      if (*f == Flow::kBreak) break;
    }
    return absl::OkStatus();
  }

  void DefineMacro(const Node& node) {
    const Node* def = &node;
    scopes_.back().Set(node.targets[0], Value::MakeFunction(
        [this, def](const CallArgs& args) -> absl::StatusOr<Value> {
          if (args.positional.size() > def->params.size()) {
            return TypeError(def->line, absl::StrFormat("macro '%s' takes %d arguments, got %d",
                                                        def->targets[0], def->params.size(),
                                                        args.positional.size()));
          }
          if (++depth_ > kMaxDepth) {
            --depth_;
            return absl::ResourceExhaustedError("template macros nested deeper than 200");
          }
          Dict scope;
          for (size_t i = 0; i < def->params.size(); ++i) {
            const auto& [name, default_value] = def->params[i];
            Value v;
            if (i < args.positional.size()) {
              v = args.positional[i];
            } else if (default_value) {
              absl::StatusOr<Value> d = Eval(*default_value);
              if (!d.ok()) {
                --depth_;
                return d.status();
              }
              v = *d;
            }
            for (const auto& [k, kv] : args.named) {
              if (k == name) v = kv;
            }
            scope.Set(name, std::move(v));
          }
          // A macro sees its parameters and the top level, not its caller.
          std::vector<Dict> saved(scopes_.begin() + 1, scopes_.end());
          scopes_.resize(1);
          scopes_.push_back(std::move(scope));
          std::string out;
          absl::StatusOr<Flow> f = Exec(def->body, &out);
          scopes_.resize(1);
          for (Dict& d : saved) scopes_.push_back(std::move(d));
          --depth_;
          LP_RETURN_IF_ERROR(f.status());
          return Value::String(std::move(out));
        }));
  }

  absl::StatusOr<CallArgs> Args(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) {
      LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [name, expr] : e.kwargs) {
      LP_ASSIGN_OR_RETURN(Value v, Eval(*expr));
      args.named.emplace_back(name, std::move(v));
    }
    return args;
  }

  absl::StatusOr<Value> Eval(const Expr& e) {
    LP_RETURN_IF_ERROR(Step(e.line));
    if (++depth_ > kMaxDepth) {
      --depth_;
      return absl::ResourceExhaustedError("template expression nested deeper than 200");
    }
    absl::StatusOr<Value> v = EvalInner(e);
    --depth_;
    if (!v.ok() && v.status().code() == absl::StatusCode::kInvalidArgument &&
        !absl::StartsWith(v.status().message(), "template line")) {
      return TypeError(e.line, v.status().message());
    }
    return v;
  }

  absl::StatusOr<Value> EvalInner(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.value;
      case Expr::Kind::kName: return Lookup(e.name);
      case Expr::Kind::kList: {
        std::vector<Value> items;
        for (const ExprPtr& a : e.args) {
          LP_ASSIGN_OR_RETURN(Value v, Eval(*a));
          items.push_back(std::move(v));
        }
        return Value::List(std::move(items));
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          LP_ASSIGN_OR_RETURN(Value k, Eval(*e.args[i]));
          LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1]));
          if (!k.is_string()) return absl::InvalidArgumentError("dict keys must be strings");
          d.Set(k.str(), std::move(v));
        }
        return Value::MakeDict(std::move(d));
      }
      case Expr::Kind::kAttr: {
        LP_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
        if (obj.is_undefined()) {
          return absl::InvalidArgumentError(
              absl::StrCat("'", e.name, "' of an undefined value"));
        }
        return GetAttr(obj, e.name);
      }
      case Expr::Kind::kItem: {
        LP_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
        LP_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
        if (obj.is_undefined()) {
          return absl::InvalidArgumentError(
              absl::StrCat("[", key.Repr(), "] of an undefined value"));
        }
        return GetItem(obj, key);
      }
      case Expr::Kind::kSlice: {
        LP_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0]));
        Value parts[3];
        for (int i = 0; i < 3; ++i) {
          if (e.args[i + 1]) {
            LP_ASSIGN_OR_RETURN(parts[i], Eval(*e.args[i + 1]));
          }
        }
        return Slice(obj, parts[0], parts[1], parts[2]);
      }
      case Expr::Kind::kCall: {
        LP_ASSIGN_OR_RETURN(Value f, Eval(*e.args[0]));
        LP_ASSIGN_OR_RETURN(CallArgs args, Args(e, 1));
        if (f.kind() != Value::Kind::kFunction) {
          return absl::InvalidArgumentError(absl::StrCat("a ", f.TypeName(), " is not callable"));
        }
        return f.function()(args);
      }
      case Expr::Kind::kFilter: {
        LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        LP_ASSIGN_OR_RETURN(CallArgs args, Args(e, 1));
        return ApplyFilter(e.name, v, args);
      }
      case Expr::Kind::kTest: {
        LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        LP_ASSIGN_OR_RETURN(CallArgs args, Args(e, 1));
        LP_ASSIGN_OR_RETURN(bool result, ApplyTest(e.name, v, args));
        return Value::Bool(result != e.negate);
      }
      case Expr::Kind::kNot: {
        LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        return Value::Bool(!v.Truthy());
      }
      case Expr::Kind::kNeg: {
        LP_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        if (!v.is_number()) return absl::InvalidArgumentError(absl::StrCat("-", v.TypeName()));
        if (v.is_integer()) return IntegerOp("-", 0, v.AsInt());
        return Value::Float(-v.AsDouble());
      }
      case Expr::Kind::kAnd: {
        LP_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        if (!a.Truthy()) return a;
        return Eval(*e.args[1]);
      }
      case Expr::Kind::kOr: {
        LP_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        if (a.Truthy()) return a;
        return Eval(*e.args[1]);
      }
      case Expr::Kind::kCond: {
        LP_ASSIGN_OR_RETURN(Value c, Eval(*e.args[0]));
        if (c.Truthy()) return Eval(*e.args[1]);
        if (e.args[2]) return Eval(*e.args[2]);
        return Value();
      }
      case Expr::Kind::kBinary: {
        LP_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        LP_ASSIGN_OR_RETURN(Value b, Eval(*e.args[1]));
        return BinaryOp(e, a, b);
      }
    }
    return absl::InternalError("unknown expression");
  }

  absl::StatusOr<Value> BinaryOp(const Expr& e, const Value& a, const Value& b) {
    const std::string& op = e.name;
    if (op == "~") {
      std::string joined = a.Str() + b.Str();
      LP_RETURN_IF_ERROR(Build(e.line, joined.size()));
      return Value::String(std::move(joined));
    }
    if (op == "==") return Value::Bool(Equal(a, b));
    if (op == "!=") return Value::Bool(!Equal(a, b));
    if (op == "<") return Bool(Less(a, b));
    if (op == ">") return Bool(Less(b, a));
    if (op == "<=") {
      LP_ASSIGN_OR_RETURN(bool gt, Less(b, a));
      return Value::Bool(!gt);
    }
    if (op == ">=") {
      LP_ASSIGN_OR_RETURN(bool lt, Less(a, b));
      return Value::Bool(!lt);
    }
    if (op == "in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat("'in <string>' needs a string, not a ",
                                                         a.TypeName()));
        }
        found = b.str().find(a.str()) != std::string::npos;
      } else if (b.is_list()) {
        for (const Value& item : b.list()) found = found || Equal(item, a);
      } else if (b.is_dict()) {
        found = a.is_string() && b.dict().Find(a.str()) != nullptr;
      } else if (!b.is_undefined()) {
        return absl::InvalidArgumentError(absl::StrCat("'in' a ", b.TypeName()));
      }
      return Value::Bool(found != e.negate);
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) {
        LP_RETURN_IF_ERROR(Build(e.line, a.str().size() + b.str().size()));
        return Value::String(a.str() + b.str());
      }
      if (a.is_list() && b.is_list()) {
        LP_RETURN_IF_ERROR(Build(e.line, Footprint(a) + Footprint(b)));
        std::vector<Value> items = a.list();
        items.insert(items.end(), b.list().begin(), b.list().end());
        return Value::List(std::move(items));
      }
    }
    if (op == "*" && (a.is_string() || a.is_list()) && b.is_integer()) {
      return Repeat(e.line, a, b.AsInt());
    }
    if (op == "*" && a.is_integer() && (b.is_string() || b.is_list())) {
      return Repeat(e.line, b, a.AsInt());
    }
    if (!a.is_number() || !b.is_number()) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported operand types for ", op, ": ",
                                                     a.TypeName(), " and ", b.TypeName()));
    }
    const bool ints = a.is_integer() && b.is_integer();
    if (ints && (op == "+" || op == "-" || op == "*" || (op == "**" && b.AsInt() >= 0))) {
      return IntegerOp(op, a.AsInt(), b.AsInt());
    }
    const double x = a.AsDouble(), y = b.AsDouble();
    if (op == "+") return Value::Float(x + y);
    if (op == "-") return Value::Float(x - y);
    if (op == "*") return Value::Float(x * y);
    if (op == "**") return Value::Float(std::pow(x, y));
    if (y == 0) return absl::InvalidArgumentError("division by zero");
    if (op == "/") return Value::Float(x / y);
    if (ints && b.AsInt() == -1 && a.AsInt() == std::numeric_limits<int64_t>::min()) {
      // The one quotient an int64 cannot hold; its remainder is 0.
      if (op == "//") return IntegerOverflow(op);
      if (op == "%") return Value::Int(0);
    }
    if (op == "//") {
      if (ints) {
        const int64_t p = a.AsInt(), q = b.AsInt();
        int64_t r = p / q;
        if ((p % q != 0) && ((p < 0) != (q < 0))) --r;
        return Value::Int(r);
      }
      return Value::Float(std::floor(x / y));
    }
    if (op == "%") {
      if (ints) {
        const int64_t p = a.AsInt(), q = b.AsInt();
        int64_t r = p % q;
        if (r != 0 && ((r < 0) != (q < 0))) r += q;
        return Value::Int(r);
      }
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value::Float(r);
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown operator ", op));
  }

  static absl::StatusOr<Value> Bool(absl::StatusOr<bool> b) {
    if (!b.ok()) return b.status();
    return Value::Bool(*b);
  }

  // Python's int arithmetic for + - * and ** (a non-negative exponent),
  // where a result past int64 is an error rather than a big int.
  static absl::StatusOr<Value> IntegerOp(absl::string_view op, int64_t p, int64_t q) {
    int64_t r = 0;
    bool overflow = false;
    if (op == "+") {
      overflow = __builtin_add_overflow(p, q, &r);
    } else if (op == "-") {
      overflow = __builtin_sub_overflow(p, q, &r);
    } else if (op == "*") {
      overflow = __builtin_mul_overflow(p, q, &r);
    } else {
      // Squaring: once a square overflows, a later factor needs it or a
      // larger power, so the result would overflow too.
      r = 1;
      for (int64_t base = p, e = q; e > 0 && !overflow;) {
        if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
        e >>= 1;
        if (e > 0 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
      }
    }
    if (overflow) return IntegerOverflow(op);
    return Value::Int(r);
  }

  static absl::Status IntegerOverflow(absl::string_view op) {
    return absl::InvalidArgumentError(
        absl::StrCat("integer overflow in ", op, " (integers are 64-bit here)"));
  }

  // Before building a string or list of about `bytes`: the copying is work
  // (a step per 256 bytes), and past kMaxValueBytes it is refused.
  absl::Status Build(int line, size_t bytes) {
    if (bytes > kMaxValueBytes) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("template line %d: a value passes 16 MiB", line));
    }
    steps_ += static_cast<int64_t>(bytes / 256);
    return Step(line);
  }

  absl::StatusOr<Value> Repeat(int line, const Value& v, int64_t n) {
    if (n > 1'000'000) return absl::ResourceExhaustedError("repetition over a million times");
    const size_t once = Footprint(v);
    if (n > 0) {
      LP_RETURN_IF_ERROR(Build(line, once > kMaxValueBytes / static_cast<size_t>(n)
                                         ? kMaxValueBytes + 1
                                         : once * static_cast<size_t>(n)));
    }
    if (v.is_string()) {
      std::string s;
      for (int64_t i = 0; i < n; ++i) s += v.str();
      return Value::String(std::move(s));
    }
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), v.list().begin(), v.list().end());
    return Value::List(std::move(items));
  }

  std::vector<Dict> scopes_;
  int64_t steps_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::StatusOr<Template> Template::Parse(std::string_view source) {
  LP_ASSIGN_OR_RETURN(Body body, ParseTemplate(source));
  Template t;
  t.body_ = std::make_shared<const Body>(std::move(body));
  return t;
}

absl::StatusOr<std::string> Template::Render(const Dict& context) const {
  Interpreter interpreter(context);
  std::string out;
  LP_ASSIGN_OR_RETURN(Flow f, interpreter.Exec(*body_, &out));
  (void)f;
  return out;
}

}  // namespace layerpool::jinja
