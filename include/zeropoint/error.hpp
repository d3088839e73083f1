// zeropoint/error.hpp — the one exception type the library throws.
#pragma once

#include <stdexcept>
#include <string>

namespace zp {

/// Every failure the library reports. The message is meant for a person: it says what went
/// wrong, where (file, tensor, index) and, when it is not obvious, what to do about it.
/// The library never prints; callers (the CLI) decide how to show it.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace zp
