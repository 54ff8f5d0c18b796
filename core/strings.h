// String building that works with std::string_view.
//
// Debian's abseil is built with its own absl::string_view rather than
// std::string_view, so absl::StrCat and friends refuse std::string_view
// arguments. caselink's interfaces use std::string_view; Cat joins those,
// abseil's views, strings and numbers.
#ifndef CASELINK_CORE_STRINGS_H_
#define CASELINK_CORE_STRINGS_H_

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace caselink {
namespace strings_internal {

inline void Append(std::string* out, std::string_view piece) {
  out->append(piece);
}
inline void Append(std::string* out, absl::string_view piece) {
  out->append(piece.data(), piece.size());
}
inline void Append(std::string* out, const char* piece) { out->append(piece); }
inline void Append(std::string* out, const std::string& piece) {
  out->append(piece);
}
inline void Append(std::string* out, char c) { out->push_back(c); }
template <std::integral T>
requires(!std::same_as<T, char> &&
         !std::same_as<T, bool>) void Append(std::string* out, T value) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, result.ptr);
}
inline void Append(std::string* out, double value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, result.ptr);
}

}  // namespace strings_internal

// Concatenates the text of every argument.
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (strings_internal::Append(&out, pieces), ...);
  return out;
}

// A std::string_view of an abseil view, such as absl::Status::message().
inline std::string_view View(absl::string_view view) {
  return std::string_view(view.data(), view.size());
}

}  // namespace caselink

#endif  // CASELINK_CORE_STRINGS_H_
