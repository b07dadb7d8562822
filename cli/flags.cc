#include "cli/flags.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace layerpool::cli {

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::String(const std::string& name, const std::string& value_name,
                     std::string* target, const std::string& help) {
  flags_.push_back({name, value_name, help, *target,
                    [target](const std::string& v) {
                      *target = v;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(const std::string& name, const std::string& value_name,
                  int64_t* target, const std::string& help) {
  flags_.push_back({name, value_name, help, absl::StrCat(*target),
                    [target, name](const std::string& v) {
                      if (!absl::SimpleAtoi(v, target)) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "--", name, ": '", v, "' is not an integer"));
                      }
                      return absl::OkStatus();
                    }});
}

void FlagSet::Double(const std::string& name, const std::string& value_name,
                     double* target, const std::string& help) {
  flags_.push_back({name, value_name, help, absl::StrCat(*target),
                    [target, name](const std::string& v) {
                      if (!absl::SimpleAtod(v, target)) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "--", name, ": '", v, "' is not a number"));
                      }
                      return absl::OkStatus();
                    }});
}

void FlagSet::Bool(const std::string& name, bool* target,
                   const std::string& help) {
  flags_.push_back({name, "", help, "",
                    [target](const std::string&) {
                      *target = true;
                      return absl::OkStatus();
                    }});
}

const FlagSet::Flag* FlagSet::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::Status FlagSet::Parse(std::span<char* const> args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg == "--") {
      for (++i; i < args.size(); ++i) positional_.push_back(args[i]);
      break;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline_value = true;
    }
    const Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (flag->value_name.empty()) {
      if (has_inline_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", name, " needs a value (", flag->value_name, ")"));
      }
      value = args[++i];
    }
    if (absl::Status s = flag->set(value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: layerpool ", usage_, "\n\n",
                                 description_, "\n\nflags:\n");
  for (const Flag& f : flags_) {
    std::string left = absl::StrCat("  --", f.name);
    if (!f.value_name.empty()) absl::StrAppend(&left, " ", f.value_name);
    std::string help = absl::StrReplaceAll(f.help, {{"\n", "\n      "}});
    absl::StrAppend(&out, left, "\n      ", help);
    if (!f.value_name.empty() && !f.default_text.empty()) {
      absl::StrAppend(&out, " (default: ", f.default_text, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help\n      show this help\n");
  return out;
}

bool ParseOrExit(FlagSet& flags, std::span<char* const> args, int* exit_code) {
  absl::Status status = flags.Parse(args);
  if (flags.help_requested()) {
    std::cout << flags.Help();
    *exit_code = 0;
    return false;
  }
  if (!status.ok()) {
    std::string help = flags.Help();
    std::cerr << "error: " << status.message() << "\n"
              << help.substr(0, help.find('\n')) << "\n"
              << "(run with --help for all flags)\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

int ReportError(const absl::Status& status) {
  std::string message(status.message());
  absl::StrReplaceAll({{"\n", " "}}, &message);
  std::cerr << "error: " << message << "\n";
  return 1;
}

}  // namespace layerpool::cli
