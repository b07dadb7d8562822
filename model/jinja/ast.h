// The parsed form of a template: expressions and statements. Internal to
// model/jinja (the parser builds it, the interpreter walks it).
#ifndef LAYERPOOL_MODEL_JINJA_AST_H_
#define LAYERPOOL_MODEL_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/jinja/value.h"

namespace layerpool::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // args: the items (also tuples)
    kDict,      // kwargs-like: keys in args[2i], values in args[2i+1]
    kAttr,      // args[0].name
    kItem,      // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]], absent parts null
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is [not] name(args[1..]); negate
    kNot,       // not args[0]
    kNeg,       // -args[0]
    kBinary,    // args[0] name args[1]: + - * / // % ** ~ == != < > <= >= in
    kAnd,
    kOr,
    kCond,      // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  bool negate = false;  // kTest: "is not"; kBinary "in": "not in"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };
  Node(Kind k, int at, std::string t = "") : kind(k), line(at), text(std::move(t)) {}

  Kind kind;
  int line = 0;
  std::string text;            // kText
  ExprPtr expr;                // kOutput, kSet (value), kFor (iterable)
  // kIf: one condition per branch; a null condition is the else branch.
  std::vector<std::pair<ExprPtr, Body>> branches;
  // kFor: loop targets (one, or several to unpack); kSet, kSetBlock: the
  // variable in targets[0], and for `set ns.attr`, the attribute in `attr`;
  // kMacro: its name in targets[0].
  std::vector<std::string> targets;
  std::string attr;
  ExprPtr filter;              // kFor: `if` clause
  Body body;                   // kFor, kSetBlock, kMacro
  Body else_body;              // kFor
  // kMacro: parameters with their defaults (null when none).
  std::vector<std::pair<std::string, ExprPtr>> params;
};

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_AST_H_
