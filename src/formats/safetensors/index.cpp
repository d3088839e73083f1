// model.safetensors.index.json, as Hugging Face writes it:
//   {"metadata": {"total_size": 123}, "weight_map": {"tensor": "model-00001-of-00002.safetensors", ...}}
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace zp::safetensors {
namespace {

using detail::in_quotes;
using nlohmann::json;

// Metadata may hold any JSON; real indexes nest a level or two. The cap bounds the recursion
// of dump() and of the destructor.
constexpr int kMaxDepth = 32;

// A shard is opened next to the index, so its name must not lead anywhere else.
void check_shard_name(const std::string& shard, const std::string& tensor, std::string_view file) {
  const auto bad = [&](std::string_view why) {
    return Error(
        fmt::format("{}: tensor {} is mapped to the shard {}, {}; a shard must be a file name in the "
                    "index's folder",
                    file, in_quotes(tensor), in_quotes(shard), why));
  };
  if (shard.empty()) throw bad("an empty name");
  if (shard == "." || shard == "..") throw bad("which is a folder");
  if (shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos) throw bad("which is a path");
  if (shard.find('\0') != std::string::npos) throw bad("which holds a NUL character");
}

}  // namespace

Index parse_index(std::string_view text, std::string_view file) {
  const std::string prefix = fmt::format("{}: the index", file);
  const json root = detail::parse_strict_json(
      text, kMaxDepth, prefix, [&](const std::vector<std::string>& parents, const std::string& key) {
        if (parents.size() == 1 && parents[0] == "weight_map") {
          return fmt::format("{}: tensor {} is listed twice in 'weight_map'", file, in_quotes(key));
        }
        return fmt::format("{}: the key {} appears twice in {}", file, in_quotes(key, 40),
                           parents.empty() ? std::string("the index") : in_quotes(parents.back(), 40));
      });
  if (!root.is_object()) {
    throw Error(fmt::format("{}: the index is {}, not a JSON object", file, detail::kind_of(root)));
  }

  Index index;
  const auto map = root.find("weight_map");
  if (map == root.end()) throw Error(fmt::format("{}: the index has no 'weight_map'", file));
  if (!map->is_object()) {
    throw Error(fmt::format("{}: 'weight_map' is {}, not an object of shard names", file, detail::kind_of(*map)));
  }
  for (const auto& [tensor, shard] : map->items()) {
    if (!shard.is_string()) {
      throw Error(fmt::format("{}: tensor {} is mapped to {}, not a shard file name", file, in_quotes(tensor),
                              detail::kind_of(shard)));
    }
    std::string name = shard.get<std::string>();
    check_shard_name(name, tensor, file);
    index.weight_map.emplace(tensor, std::move(name));
  }

  if (const auto metadata = root.find("metadata"); metadata != root.end() && !metadata->is_null()) {
    if (!metadata->is_object()) {
      throw Error(fmt::format("{}: 'metadata' is {}, not an object", file, detail::kind_of(*metadata)));
    }
    // Other tools write it as a float or a string now and then; it is informative only.
    if (const auto total = metadata->find("total_size"); total != metadata->end() && total->is_number_unsigned()) {
      index.total_size = total->get<std::uint64_t>();
    }
    index.metadata_json = metadata->dump();
  }
  return index;
}

std::string serialize_index(const Index& index) {
  json metadata;
  try {
    metadata = json::parse(index.metadata_json);
  } catch (const json::exception& e) {
    throw Error(fmt::format("index metadata is not valid JSON: {}", npy::detail::printable(e.what(), 200)));
  }
  if (!metadata.is_object()) throw Error(fmt::format("index metadata is {}, not an object", detail::kind_of(metadata)));
  if (index.total_size) metadata["total_size"] = *index.total_size;

  json root = json::object();
  root["metadata"] = std::move(metadata);
  json& map = root["weight_map"] = json::object();
  for (const auto& [tensor, shard] : index.weight_map) map[tensor] = shard;
  try {
    // Hugging Face's layout: two-space indent, sorted keys, a final newline.
    return root.dump(2) + "\n";
  } catch (const json::exception& e) {
    throw Error(fmt::format("cannot write the index: {}", npy::detail::printable(e.what(), 200)));
  }
}

}  // namespace zp::safetensors
