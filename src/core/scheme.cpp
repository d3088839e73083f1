#include "zeropoint/scheme.hpp"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "zeropoint/error.hpp"

namespace zp {
namespace {

constexpr std::string_view kGrammar =
    "expected TYPE[:OPTION]..., TYPE one of int2..int8, int16, uint2..uint8, uint16, OPTION one of "
    "channel[=AXIS], block=B, axis=AXIS, sym, asym, narrow, full, round=even|away|up, zp=int|float, recip, mse "
    "(for example int8, uint8:asym, int8:channel=0, int4:block=32)";

[[noreturn]] void fail(std::string_view text, std::string_view why) {
  throw Error(fmt::format("bad scheme '{}': {}; {}", text, why, kGrammar));
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? s.size() - start : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

template <class Int>
Int parse_int(std::string_view scheme, std::string_view option, std::string_view digits) {
  Int value{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    fail(scheme, fmt::format("'{}' needs an integer, got '{}'", option, digits));
  }
  return value;
}

bool default_symmetric(bool is_signed) { return is_signed; }
bool default_narrow(bool is_signed, bool symmetric) { return is_signed && symmetric; }

}  // namespace

Scheme Scheme::parse(std::string_view text) {
  const auto parts = split(text, ':');
  Scheme s;
  std::string_view type = parts[0];
  s.is_signed = !type.starts_with("u");
  if (!s.is_signed) type.remove_prefix(1);
  if (!type.starts_with("int")) fail(text, fmt::format("unknown type '{}'", parts[0]));
  type.remove_prefix(3);
  s.bits = parse_int<int>(text, parts[0], type);

  // Options may come in any order; symmetry and range defaults depend on each other, so they
  // are resolved after all options are read.
  bool symmetric_set = false, range_set = false, axis_set = false;
  bool granularity_set = false;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string_view opt = parts[i];
    const std::size_t eq = opt.find('=');
    const std::string_view key = opt.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view{} : opt.substr(eq + 1);
    const bool has_value = eq != std::string_view::npos;
    auto no_value = [&] {
      if (has_value) fail(text, fmt::format("option '{}' takes no value", key));
    };
    if (key == "sym" || key == "asym") {
      no_value();
      if (symmetric_set) fail(text, "sym/asym given twice");
      s.symmetric = key == "sym";
      symmetric_set = true;
    } else if (key == "narrow" || key == "full") {
      no_value();
      if (range_set) fail(text, "narrow/full given twice");
      s.narrow = key == "narrow";
      range_set = true;
    } else if (key == "channel") {
      if (granularity_set) fail(text, "more than one granularity (channel, block)");
      s.granularity = Granularity::channel;
      granularity_set = true;
      if (has_value) {
        s.axis = parse_int<int>(text, opt, value);
        axis_set = true;
      }
    } else if (key == "block") {
      if (granularity_set) fail(text, "more than one granularity (channel, block)");
      if (!has_value) fail(text, "'block' needs a size, as in block=32");
      s.granularity = Granularity::block;
      granularity_set = true;
      s.block = parse_int<std::int64_t>(text, opt, value);
    } else if (key == "axis") {
      if (axis_set) fail(text, "the axis is given twice");
      s.axis = parse_int<int>(text, opt, value);
      axis_set = true;
    } else if (key == "recip") {
      no_value();
      s.reciprocal = true;
    } else if (key == "mse") {
      no_value();
      s.mse = true;
    } else if (key == "round") {
      if (value == "even") s.rounding = Rounding::half_even;
      else if (value == "away") s.rounding = Rounding::half_away;
      else if (value == "up") s.rounding = Rounding::half_up;
      else fail(text, fmt::format("round must be even, away or up, got '{}'", value));
    } else if (key == "zp") {
      if (value == "int") s.zero_point = ZeroPointKind::integer;
      else if (value == "float") s.zero_point = ZeroPointKind::float_offset;
      else fail(text, fmt::format("zp must be int or float, got '{}'", value));
    } else {
      fail(text, fmt::format("unknown option '{}'", opt));
    }
  }
  if (axis_set && s.granularity == Granularity::tensor) {
    fail(text, "axis= needs channel or block=B");
  }
  if (s.granularity == Granularity::block && !axis_set) s.axis = -1;
  if (!symmetric_set) s.symmetric = default_symmetric(s.is_signed) && s.zero_point == ZeroPointKind::integer;
  if (!range_set) s.narrow = default_narrow(s.is_signed, s.symmetric);
  try {
    s.validate();
  } catch (const Error& e) {
    fail(text, e.what());
  }
  return s;
}

void Scheme::validate() const {
  if (!((bits >= 2 && bits <= 8) || bits == 16)) {
    throw Error(fmt::format("{} bits is not supported (2 to 8, or 16)", bits));
  }
  if (granularity == Granularity::block && block < 2) {
    throw Error(fmt::format("block size must be at least 2, got {}", block));
  }
  if (granularity != Granularity::block && block != 0) {
    throw Error("a block size is set but the granularity is not per-block");
  }
  if (granularity == Granularity::tensor && axis != 0) {
    throw Error("an axis is set but the granularity is per-tensor");
  }
  if (symmetric && !is_signed && narrow) {
    throw Error(
        "symmetric unsigned codes keep the full range (zero point 2^(bits-1), as PyTorch's "
        "quint8); use a signed type for the narrow symmetric range");
  }
  if (symmetric && zero_point == ZeroPointKind::float_offset) {
    throw Error("zp=float fits an offset to the range minimum, which needs asym");
  }
}

int Scheme::qmin() const noexcept {
  const int full_min = is_signed ? -(1 << (bits - 1)) : 0;
  return narrow ? full_min + 1 : full_min;
}

int Scheme::qmax() const noexcept { return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }

std::string Scheme::type_name() const { return fmt::format("{}int{}", is_signed ? "" : "u", bits); }

int Scheme::resolve_axis(int rank) const {
  const int resolved = axis < 0 ? axis + rank : axis;
  if (resolved < 0 || resolved >= rank) {
    throw Error(fmt::format("axis {} is out of range for a tensor of rank {} (scheme {})", axis, rank, str()));
  }
  return resolved;
}

std::string Scheme::str() const {
  std::string out = type_name();
  if (granularity == Granularity::channel) out += fmt::format(":channel={}", axis);
  if (granularity == Granularity::block) {
    out += fmt::format(":block={}", block);
    if (axis != -1) out += fmt::format(":axis={}", axis);
  }
  // Asymmetry is always spelled out: a reader should not need to know the defaults to see it.
  if (!symmetric) out += ":asym";
  else if (!is_signed) out += ":sym";
  if (narrow != default_narrow(is_signed, symmetric)) out += narrow ? ":narrow" : ":full";
  if (rounding == Rounding::half_away) out += ":round=away";
  if (rounding == Rounding::half_up) out += ":round=up";
  if (zero_point == ZeroPointKind::float_offset) out += ":zp=float";
  if (reciprocal) out += ":recip";
  if (mse) out += ":mse";
  return out;
}

}  // namespace zp
