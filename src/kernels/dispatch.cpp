#include "kernels/dispatch.hpp"

#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hwy/targets.h>

#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"

namespace zp::kernels {
namespace {

// Targets this binary contains and this CPU runs, best first, ignoring any restriction.
std::vector<std::int64_t> hardware_targets() {
  hwy::SetSupportedTargetsForTest(0);  // lift a restriction to see everything
  std::vector<std::int64_t> out = hwy::SupportedAndGeneratedTargets();
  return out;
}

std::string& forced_name() {
  static std::string name;
  return name;
}

}  // namespace

std::vector<std::string> available_targets() {
  detail::configure_dispatch_once();
  const std::string keep = forced_name();
  std::vector<std::string> names;
  for (std::int64_t t : hardware_targets()) names.emplace_back(hwy::TargetName(t));
  if (!keep.empty()) force_target(keep);  // hardware_targets() lifted it
  return names;
}

void force_target(std::string_view name) {
  if (name.empty()) {
    hwy::SetSupportedTargetsForTest(0);
    forced_name().clear();
    return;
  }
  std::vector<std::string> names;
  for (std::int64_t t : hardware_targets()) {
    names.emplace_back(hwy::TargetName(t));
    if (names.back() == name) {
      hwy::SetSupportedTargetsForTest(t);
      forced_name() = std::string(name);
      return;
    }
  }
  if (!forced_name().empty()) force_target(forced_name());  // keep the previous choice
  throw Error(fmt::format("instruction set '{}' is not available here; choose one of: {}", name,
                          fmt::join(names, ", ")));
}

std::string current_target() {
  detail::configure_dispatch_once();
  return hwy::TargetName(hwy::SupportedAndGeneratedTargets().front());
}

namespace detail {

void configure_dispatch_once() {
  static const bool configured = [] {
    // Kernels cannot throw, so a bad name here is ignored (the best target stays); the CLI
    // checks the variable itself first and reports it.
    const char* env = std::getenv("ZEROPOINT_TARGET");
    try {
      if (env != nullptr && *env != '\0') force_target(env);
    } catch (const Error&) {
    }
    return true;
  }();
  (void)configured;
}

}  // namespace detail
}  // namespace zp::kernels
