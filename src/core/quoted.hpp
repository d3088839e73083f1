// Names from files, quoted for one-line messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace zp::detail {

/// `text` in single quotes, control and non-ASCII bytes, quotes and backslashes escaped as \xNN,
/// cut after `max` bytes (with the full length said): a hostile name cannot break the line.
inline std::string in_quotes(std::string_view text, std::size_t max = 120) {
  std::string out = "'";
  for (std::size_t k = 0; k < text.size(); ++k) {
    if (k == max) return out + fmt::format("...' ({} bytes)", text.size());
    const auto c = static_cast<unsigned char>(text[k]);
    if (c < 0x20 || c >= 0x7F || c == '\'' || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

}  // namespace zp::detail
