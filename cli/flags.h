// A small per-subcommand flag parser for the `layerpool` binary.
//
// absl/flags keeps one global registry, which does not fit a binary whose
// subcommands each take their own flags; this parser is local to one
// subcommand. Flags are written `--name value` or `--name=value`; boolean
// flags take no value (`--add-special`). Positional arguments are collected
// in order. `--help` / `-h` sets help_requested().
#ifndef LAYERPOOL_CLI_FLAGS_H_
#define LAYERPOOL_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace layerpool::cli {

class FlagSet {
 public:
  // `usage` is the synopsis line after "usage: layerpool ", `description`
  // a paragraph printed under it.
  FlagSet(std::string usage, std::string description);

  // Registers flags. `value_name` is shown in help ("--model FILE"). The
  // target keeps its current value as the default and must outlive Parse.
  void String(const std::string& name, const std::string& value_name,
              std::string* target, const std::string& help);
  void Int(const std::string& name, const std::string& value_name,
           int64_t* target, const std::string& help);
  void Double(const std::string& name, const std::string& value_name,
              double* target, const std::string& help);
  void Bool(const std::string& name, bool* target, const std::string& help);

  // Parses `args` (the words after the subcommand). InvalidArgument names
  // the offending flag: unknown flag, missing value, malformed number.
  [[nodiscard]] absl::Status Parse(std::span<char* const> args);

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string value_name;  // empty for booleans
    std::string help;
    std::string default_text;
    std::function<absl::Status(const std::string&)> set;
  };
  const Flag* Find(const std::string& name) const;

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

// Parses `args` into `flags`; on --help prints the help to stdout and returns
// 0 through `exit_code`; on a parse error prints "error: ..." and the usage
// line to stderr and returns 2. Returns true when the command should run.
bool ParseOrExit(FlagSet& flags, std::span<char* const> args, int* exit_code);

// Prints "error: <message>" to stderr as one line and returns 1.
int ReportError(const absl::Status& status);

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_FLAGS_H_
