// GGUF metadata: values, the ordered key list, and the keys a quantizer sets.
#include <array>
#include <variant>

#include "formats/gguf/gguf_detail.hpp"
#include "zeropoint/formats/gguf.hpp"

namespace zp::gguf {

std::string_view type_name(ValueType type) noexcept {
  static constexpr std::array<std::string_view, 13> kNames = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  const auto id = static_cast<std::uint32_t>(type);
  return id < kNames.size() ? kNames[id] : std::string_view("unknown");
}

std::size_t Array::size() const noexcept {
  return std::visit([](const auto& v) { return v.size(); }, items);
}

std::optional<std::uint64_t> Value::to_u64() const noexcept {
  return std::visit(
      [](const auto& x) -> std::optional<std::uint64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_signed_v<T>) {
            if (x < 0) return std::nullopt;
          }
          return static_cast<std::uint64_t>(x);
        } else {
          return std::nullopt;
        }
      },
      v_);
}

const Value* Metadata::find(std::string_view key) const noexcept {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Metadata::set(std::string key, Value value) {
  const auto it = index_.find(std::string_view(key));
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(value));
}

bool Metadata::insert(std::string key, Value value) {
  if (!index_.emplace(key, entries_.size()).second) return false;
  entries_.emplace_back(std::move(key), std::move(value));
  return true;
}

bool Metadata::erase(std::string_view key) {
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  const std::size_t at = it->second;
  index_.erase(it);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(at));
  for (auto& [name, position] : index_) {
    if (position > at) --position;
  }
  return true;
}

std::optional<std::uint32_t> file_type_of(ggml::Type type) noexcept {
  using T = ggml::Type;
  // llama.cpp's llama_ftype (include/llama.h). The K types map to the _M mixes, as llama.cpp's
  // loader does when it guesses a missing general.file_type from the most common tensor type.
  switch (type) {
    case T::f32: return 0;
    case T::f16: return 1;
    case T::q4_0: return 2;
    case T::q4_1: return 3;
    case T::q8_0: return 7;
    case T::q5_0: return 8;
    case T::q5_1: return 9;
    case T::q2_K: return 10;
    case T::q3_K: return 12;
    case T::q4_K: return 15;
    case T::q5_K: return 17;
    case T::q6_K: return 18;
    case T::iq2_xxs: return 19;
    case T::iq2_xs: return 20;
    case T::iq3_xxs: return 23;
    case T::iq1_s: return 24;
    case T::iq4_nl: return 25;
    case T::iq3_s: return 26;
    case T::iq2_s: return 28;
    case T::iq4_xs: return 30;
    case T::iq1_m: return 31;
    case T::bf16: return 32;
    case T::tq1_0: return 36;
    case T::tq2_0: return 37;
    case T::mxfp4: return 38;  // LLAMA_FTYPE_MOSTLY_MXFP4_MOE
    default: return std::nullopt;
  }
}

void set_quantization_version(Metadata& metadata, std::uint32_t version) {
  metadata.set(std::string(kQuantizationVersionKey), Value(version));
}

void set_file_type(Metadata& metadata, std::uint32_t file_type) {
  metadata.set(std::string(kFileTypeKey), Value(file_type));
}

}  // namespace zp::gguf
