// Propagation helpers for absl::Status, which Debian's abseil lacks.
#ifndef CASELINK_CORE_STATUS_MACROS_H_
#define CASELINK_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define CASELINK_CONCAT_INNER_(a, b) a##b
#define CASELINK_CONCAT_(a, b) CASELINK_CONCAT_INNER_(a, b)

// Returns from the calling function with `expr`'s status if it is not OK.
// Each use declares its own variable, so uses may nest (in lambdas).
#define CASELINK_RETURN_IF_ERROR(expr) \
  CASELINK_RETURN_IF_ERROR_IMPL_(      \
      CASELINK_CONCAT_(caselink_status_, __LINE__), expr)

#define CASELINK_RETURN_IF_ERROR_IMPL_(status, expr) \
  do {                                               \
    ::absl::Status status = (expr);                  \
    if (!status.ok()) {                              \
      return status;                                 \
    }                                                \
  } while (false)

// Evaluates `rexpr`, an absl::StatusOr<T>; returns its status if not OK,
// else moves its value into `lhs` (which may be a declaration).
#define CASELINK_ASSIGN_OR_RETURN(lhs, rexpr) \
  CASELINK_ASSIGN_OR_RETURN_IMPL_(            \
      CASELINK_CONCAT_(caselink_statusor_, __LINE__), lhs, rexpr)

#define CASELINK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) {                                       \
    return std::move(statusor).status();                      \
  }                                                           \
  lhs = std::move(statusor).value()

#endif  // CASELINK_CORE_STATUS_MACROS_H_
