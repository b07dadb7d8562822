// Status propagation helpers. Abseil 20220623 ships absl::Status but no
// RETURN_IF_ERROR / ASSIGN_OR_RETURN, so layerpool defines its own here.
//
//   LP_RETURN_IF_ERROR(file.Read(...));
//   LP_RETURN_IF_ERROR(Parse(x), "reading tensor ", name);   // adds context
//   LP_ASSIGN_OR_RETURN(auto map, MapFile(path));
//   LP_ASSIGN_OR_RETURN(auto map, MapFile(path), "opening ", path);
//
// Context is prepended as "context: original message"; the code is kept.
#ifndef LAYERPOOL_BASE_STATUS_MACROS_H_
#define LAYERPOOL_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace layerpool {

// Returns `status` with `context` prepended to its message. OK stays OK.
template <typename... Args>
absl::Status Annotate(const absl::Status& status, const Args&... context) {
  if (status.ok() || sizeof...(context) == 0) return status;
  return absl::Status(status.code(), absl::StrCat(context..., ": ",
                                                  status.message()));
}

}  // namespace layerpool

#define LP_STATUS_CONCAT_INNER_(a, b) a##b
#define LP_STATUS_CONCAT_(a, b) LP_STATUS_CONCAT_INNER_(a, b)

#define LP_RETURN_IF_ERROR(expr, ...)                              \
  do {                                                             \
    ::absl::Status lp_status_ = (expr);                            \
    if (!lp_status_.ok()) {                                        \
      return ::layerpool::Annotate(lp_status_ __VA_OPT__(, ) __VA_ARGS__); \
    }                                                              \
  } while (0)

#define LP_ASSIGN_OR_RETURN(lhs, rexpr, ...)                              \
  LP_ASSIGN_OR_RETURN_IMPL_(LP_STATUS_CONCAT_(lp_statusor_, __LINE__), lhs, \
                            rexpr __VA_OPT__(, ) __VA_ARGS__)

#define LP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr, ...)        \
  auto statusor = (rexpr);                                          \
  if (!statusor.ok()) {                                             \
    return ::layerpool::Annotate(statusor.status() __VA_OPT__(, )   \
                                     __VA_ARGS__);                  \
  }                                                                 \
  lhs = std::move(statusor).value()

#endif  // LAYERPOOL_BASE_STATUS_MACROS_H_
