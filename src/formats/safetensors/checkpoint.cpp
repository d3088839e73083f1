// A checkpoint as Hugging Face lays it out: one model.safetensors, or shards plus an index.
#include <algorithm>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "formats/safetensors/strict_json.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/safetensors.hpp"

namespace zp::safetensors {
namespace {

namespace fs = std::filesystem;
using detail::in_quotes;

// Indexes of the largest models are a few MB; this only stops a huge file from being read whole.
constexpr std::uintmax_t kMaxIndexBytes = 100'000'000;

bool ends_with(const fs::path& p, std::string_view suffix) { return p.filename().string().ends_with(suffix); }

std::string list(const std::vector<fs::path>& paths) {
  std::string out;
  for (const auto& p : paths) out += fmt::format("{}{}", out.empty() ? "" : ", ", p.filename().string());
  return out;
}

// The index or the single file a folder holds.
fs::path pick_in_folder(const fs::path& folder) {
  if (const fs::path index = folder / "model.safetensors.index.json"; fs::is_regular_file(index)) return index;
  std::vector<fs::path> indexes, files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file()) continue;  // follows symlinks, as in the Hugging Face cache
    if (ends_with(entry.path(), ".safetensors.index.json")) indexes.push_back(entry.path());
    if (ends_with(entry.path(), ".safetensors")) files.push_back(entry.path());
  }
  if (ec) throw Error(fmt::format("{}: cannot list the folder: {}", folder.string(), ec.message()));
  std::sort(indexes.begin(), indexes.end());
  std::sort(files.begin(), files.end());
  if (indexes.size() == 1) return indexes[0];
  if (indexes.size() > 1) {
    throw Error(fmt::format("{}: the folder holds {} safetensors indexes ({}); open one of them", folder.string(),
                            indexes.size(), list(indexes)));
  }
  if (files.size() == 1) return files[0];
  if (files.empty()) {
    throw Error(
        fmt::format("{}: the folder holds no .safetensors file and no .safetensors.index.json", folder.string()));
  }
  throw Error(
      fmt::format("{}: the folder holds {} .safetensors files ({}) but no index saying how they belong "
                  "together; open one file, or add a model.safetensors.index.json",
                  folder.string(), files.size(), list(files)));
}

Index read_index(const fs::path& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (!ec && size > kMaxIndexBytes) {
    throw Error(fmt::format("{}: {} bytes is far more than any safetensors index holds", path.string(), size));
  }
  const std::vector<std::byte> bytes = zp::detail::read_file(path);
  return parse_index({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, path.string());
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(fmt::format("{}: no such file or folder", path.string()));
  const fs::path chosen = fs::is_directory(status) ? pick_in_folder(path) : path;

  Checkpoint c;
  if (!ends_with(chosen, ".json")) {
    c.files_.push_back(File::open(chosen));
  } else {
    const std::string index_name = chosen.string();
    c.index_ = read_index(chosen);
    const Index& index = *c.index_;
    std::set<std::string> shards;  // sorted: shard 00001 first
    for (const auto& [tensor, shard] : index.weight_map) shards.insert(shard);

    const fs::path folder = chosen.parent_path();
    for (const std::string& shard : shards) {
      const fs::path shard_path = folder / shard;
      if (!fs::exists(shard_path, ec)) {
        throw Error(fmt::format("{}: the shard {} does not exist (looked for {})", index_name, in_quotes(shard),
                                shard_path.string()));
      }
      c.files_.push_back(File::open(shard_path));
    }
    // tensor name -> the file that holds it
    std::unordered_map<std::string_view, std::size_t> holder;
    for (std::size_t f = 0; f < c.files_.size(); ++f) {
      for (const TensorInfo& t : c.files_[f].header().tensors) {
        if (const auto [it, fresh] = holder.emplace(t.name, f); !fresh) {
          throw Error(fmt::format("tensor {} is in two shards, {} and {}", in_quotes(t.name),
                                  c.files_[it->second].path().string(), c.files_[f].path().string()));
        }
      }
    }
    for (const File& file : c.files_) {
      const std::string shard = file.path().filename().string();
      for (const TensorInfo& t : file.header().tensors) {
        const auto listed = index.weight_map.find(t.name);
        if (listed == index.weight_map.end()) {
          throw Error(
              fmt::format("{}: tensor {} is not in the index {}", file.path().string(), in_quotes(t.name), index_name));
        }
        if (listed->second != shard) {
          throw Error(fmt::format("{}: tensor {} is here, but the index {} puts it in {}", file.path().string(),
                                  in_quotes(t.name), index_name, in_quotes(listed->second)));
        }
      }
    }
    for (const auto& [tensor, shard] : index.weight_map) {
      if (!holder.contains(tensor)) {
        throw Error(fmt::format("{}: tensor {} is listed in shard {}, but {} does not hold it", index_name,
                                in_quotes(tensor), in_quotes(shard), (folder / shard).string()));
      }
    }
  }

  for (std::size_t f = 0; f < c.files_.size(); ++f) {
    for (const TensorInfo& t : c.files_[f].header().tensors) c.tensors_.push_back({f, &t});
  }
  return c;
}

const std::vector<File>& Checkpoint::files() const noexcept { return files_; }
const std::vector<Checkpoint::Entry>& Checkpoint::tensors() const noexcept { return tensors_; }
const std::map<std::string, std::string>& Checkpoint::metadata() const noexcept {
  return files_.empty() ? empty_ : files_.front().header().metadata;
}
const std::optional<Index>& Checkpoint::index() const noexcept { return index_; }

std::uint64_t Checkpoint::total_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const Entry& e : tensors_) total += e.info->size;
  return total;
}

}  // namespace zp::safetensors
