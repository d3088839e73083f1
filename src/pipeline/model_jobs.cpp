// Whole checkpoints: quantize, dequantize, inspect and analyze safetensors models, one tensor at
// a time so that memory follows the largest tensor, not the model.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/file_io.hpp"
#include "zeropoint/error.hpp"
#include "pipeline/ggml_convert.hpp"
#include "core/quantize_parts.hpp"
#include "pipeline/staging.hpp"
#include "zeropoint/formats/gguf.hpp"
#include "zeropoint/formats/safetensors.hpp"
#include "zeropoint/ggml_model.hpp"
#include "zeropoint/model.hpp"
#include "zeropoint/onnx_model.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/quantize.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;
using Clock = std::chrono::steady_clock;

// The "__metadata__" entry that makes a quantized checkpoint self-describing.
constexpr const char* kMetadataKey = "zeropoint";
constexpr const char* kFormat = "zeropoint.safetensors.v1";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// --- How a quantized tensor is stored ---------------------------------------------------------

struct StoredNames {
  std::string codes, scale, zero_point, offset;  // empty when not stored
};

StoredNames stored_names(const std::string& name, const Scheme& s) {
  const bool packed = container_bits(s.bits) < 8;
  return {packed ? name + "_packed" : name, name + "_scale", stores_zero_point(s) ? name + "_zero_point" : "",
          s.zero_point == ZeroPointKind::float_offset ? name + "_offset" : ""};
}

// Packed codes keep the tensor's rows when a row fills whole bytes, else they are one flat run.
Shape stored_codes_shape(const Shape& shape, const Scheme& s) {
  const int cbits = container_bits(s.bits);
  if (cbits >= 8) return shape;
  const std::int64_t per_byte = 8 / cbits;
  if (!shape.empty() && shape.back() % per_byte == 0) {
    Shape rows = shape;
    rows.back() /= per_byte;
    return rows;
  }
  return {packed_size(checked_numel(shape), s.bits)};
}

std::string stored_codes_dtype(const Scheme& s) {
  return container_bits(s.bits) < 8 ? "U8" : std::string(st::dtype_name(code_dtype(s)));
}

// The planned tensors a quantized tensor becomes, in the order they are written.
void plan_quantized(const std::string& name, const Shape& shape, const Scheme& s, std::vector<st::PlannedTensor>& out) {
  const StoredNames n = stored_names(name, s);
  const Shape params = ParamLayout::of(shape, s).param_shape;
  out.push_back({n.codes, stored_codes_dtype(s), stored_codes_shape(shape, s)});
  out.push_back({n.scale, "F32", params});
  if (!n.zero_point.empty()) out.push_back({n.zero_point, std::string(st::dtype_name(code_dtype(s))), params});
  if (!n.offset.empty()) out.push_back({n.offset, "F32", params});
}

// --- Where outputs go -------------------------------------------------------------------------

// A path ending in .safetensors is a file (its shards, if any, named after it, beside it);
// anything else is a folder that gets Hugging Face's names.
struct OutputFiles {
  fs::path folder;
  std::vector<fs::path> files;      // per shard
  std::optional<fs::path> index;    // when sharded
  std::vector<std::size_t> shard_of;  // per planned tensor
};

OutputFiles output_files(const fs::path& output, const std::vector<st::PlannedTensor>& planned,
                         std::uint64_t max_shard_bytes) {
  const bool as_file = output.extension() == ".safetensors";
  OutputFiles out;
  out.folder = as_file ? (output.has_parent_path() ? output.parent_path() : fs::path(".")) : output;
  const std::string stem = as_file ? output.stem().string() : "model";
  const st::ShardPlan shards =
      st::plan_shards(planned, max_shard_bytes == 0 ? std::numeric_limits<std::uint64_t>::max() : max_shard_bytes, stem);
  out.shard_of = shards.shard_of;
  for (const std::string& name : shards.file_names) out.files.push_back(out.folder / name);
  if (out.files.size() == 1 && as_file) out.files[0] = output;
  if (out.files.size() > 1) out.index = out.folder / (stem + ".safetensors.index.json");
  return out;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

// Never write over an input: the output would be read while being replaced.
void refuse_overwriting_inputs(const st::Checkpoint& in, const OutputFiles& out, const fs::path& input) {
  std::vector<fs::path> inputs;
  for (const st::File& f : in.files()) inputs.push_back(f.path());
  if (in.index() && fs::is_regular_file(input)) inputs.push_back(input);
  std::vector<fs::path> outputs = out.files;
  if (out.index) outputs.push_back(*out.index);
  for (const fs::path& o : outputs) {
    for (const fs::path& i : inputs) {
      if (same_file(o, i)) throw Error(fmt::format("{}: the output would overwrite an input file; choose another output", o.string()));
    }
  }
}

// Writes the planned tensors shard by shard and makes them all appear at the end, or none.
class ShardedWriter {
 public:
  ShardedWriter(const OutputFiles& files, const std::vector<st::PlannedTensor>& planned,
                const std::map<std::string, std::string>& metadata)
      : files_(files), planned_(planned) {
    std::error_code ec;
    fs::create_directories(files.folder, ec);
    if (ec) throw Error(fmt::format("{}: cannot create the output folder: {}", files.folder.string(), ec.message()));
    std::vector<std::vector<st::PlannedTensor>> per_shard(files.files.size());
    for (std::size_t i = 0; i < planned.size(); ++i) per_shard[files.shard_of[i]].push_back(planned[i]);
    for (std::size_t k = 0; k < files.files.size(); ++k) writers_.emplace_back(files.files[k], per_shard[k], metadata);
  }

  // The next bytes of the planned tensors, in their order: a tensor's data in one call or in
  // several, never two tensors' in one.
  void write(std::span<const std::byte> data) {
    skip_complete();
    if (data.empty()) return;
    writers_[files_.shard_of[next_]].write(data);  // which refuses more than its tensor holds
    done_ += data.size();
    skip_complete();
  }
  template <class T>
  void write(const std::vector<T>& values) {
    write(std::as_bytes(std::span<const T>(values)));
  }

  std::vector<fs::path> commit(std::uint64_t total_size, const std::string& index_metadata_json) {
    for (st::Writer& w : writers_) w.commit();
    std::vector<fs::path> written = files_.files;
    if (files_.index) {
      st::Index index;
      for (std::size_t i = 0; i < planned_.size(); ++i) {
        index.weight_map[planned_[i].name] = files_.files[files_.shard_of[i]].filename().string();
      }
      index.total_size = total_size;
      index.metadata_json = index_metadata_json;
      const std::string text = st::serialize_index(index);
      detail::write_file_atomically(*files_.index, std::as_bytes(std::span<const char>(text.data(), text.size())));
      written.push_back(*files_.index);
    }
    return written;
  }

 private:
  void skip_complete() {
    while (next_ < planned_.size() &&
           done_ == st::byte_size(*st::dtype_info(planned_[next_].dtype), planned_[next_].shape)) {
      ++next_;
      done_ = 0;
    }
  }

  const OutputFiles& files_;
  const std::vector<st::PlannedTensor>& planned_;
  std::vector<st::Writer> writers_;
  std::size_t next_ = 0;    // the planned tensor being written
  std::uint64_t done_ = 0;  // its bytes written so far
};

std::uint64_t data_bytes(const st::PlannedTensor& t) { return st::byte_size(*st::dtype_info(t.dtype), t.shape); }

std::string index_metadata(std::uint64_t total_size) {
  return nlohmann::json{{"total_size", total_size}}.dump();
}

// --- The "zeropoint" metadata entry -----------------------------------------------------------

struct QuantizedEntry {
  Scheme scheme;
  std::string dtype;  // before quantization
  Shape shape;
};

std::string describe_quantized(const std::vector<std::pair<std::string, QuantizedEntry>>& entries) {
  nlohmann::ordered_json tensors = nlohmann::ordered_json::object();
  for (const auto& [name, e] : entries) {
    tensors[name] = {{"scheme", e.scheme.str()}, {"dtype", e.dtype}, {"shape", e.shape}};
  }
  return nlohmann::ordered_json{{"format", kFormat}, {"tensors", tensors}}.dump();
}

// The quantized tensors a checkpoint's metadata records (empty when there is no entry).
std::map<std::string, QuantizedEntry> read_quantized_entries(const st::Checkpoint& ck, const fs::path& input) {
  std::map<std::string, QuantizedEntry> out;
  const auto& meta = ck.metadata();
  const auto it = meta.find(kMetadataKey);
  if (it == meta.end()) return out;
  const std::string where = fmt::format("{}: __metadata__ '{}'", input.string(), kMetadataKey);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{} is not JSON: {}", where, e.what()));
  }
  if (!j.is_object() || j.value("format", "") != kFormat || !j.contains("tensors") || !j["tensors"].is_object()) {
    throw Error(fmt::format("{} is not a {} description", where, kFormat));
  }
  for (const auto& [name, e] : j["tensors"].items()) {
    try {
      QuantizedEntry q;
      q.scheme = Scheme::parse(e.at("scheme").get<std::string>());
      q.dtype = e.at("dtype").get<std::string>();
      for (const auto& d : e.at("shape")) {
        const auto v = d.get<std::int64_t>();
        if (v < 0) throw Error("negative dimension");
        q.shape.push_back(v);
      }
      (void)checked_numel(q.shape);
      out.emplace(name, std::move(q));
    } catch (const std::exception& ex) {
      throw Error(fmt::format("{}: tensor '{}': {}", where, name, ex.what()));
    }
  }
  return out;
}

// Parts small enough that the thread waiting for a tensor (the first one, above all) finds some
// left to read, large enough that a system call each is noise.
constexpr std::size_t kReadPart = std::size_t{16} << 20;

// The length of a tensor's first axis, 1 for a scalar: what pieces divide.
std::int64_t leading_rows(const Shape& shape) { return shape.empty() ? 1 : shape[0]; }

// A tensor's rows [first_row, first_row + rows) along its first axis (all of it when rows is its
// first dimension, or for a scalar).
struct Piece {
  std::size_t tensor;  // index into ck.tensors()
  std::int64_t first_row = 0, rows = 0;
};

// Reads the pieces `order` names one ahead, as views.
class TensorReadAhead {
 public:
  TensorReadAhead(const st::Checkpoint& ck, std::vector<Piece> order)
      : ck_(ck),
        order_(std::move(order)),
        reader_(
            order_.size(), [this](std::size_t k) { return static_cast<std::size_t>(bytes(k)); },
            [this](std::size_t k, std::size_t offset, std::span<std::byte> out) {
              const st::TensorInfo& t = info(k);
              const st::File& file = ck_.files()[ck_.tensors()[order_[k].tensor].file];
              if (!t.type) {
                throw Error(fmt::format("{}: tensor '{}' has dtype {}, which zeropoint cannot read", file.path().string(),
                                        t.name, t.dtype));
              }
              st::TensorInfo part = t;  // the same tensor, narrowed to this part of its bytes
              part.offset += first_byte(k) + offset;
              part.size = out.size();
              file.read(part, out);
            },
            kReadPart) {}
  // Whole tensors.
  TensorReadAhead(const st::Checkpoint& ck, const std::vector<std::size_t>& tensors)
      : TensorReadAhead(ck, whole(ck, tensors)) {}

  // The next piece; the previous view is invalid from now on.
  TensorView next() {
    const std::size_t k = next_++;
    return TensorView(reader_.next().data(), *info(k).type, shape(k));
  }

 private:
  static std::vector<Piece> whole(const st::Checkpoint& ck, const std::vector<std::size_t>& tensors) {
    std::vector<Piece> out;
    for (std::size_t i : tensors) {
      const Shape& shape = ck.tensors()[i].info->shape;
      out.push_back({i, 0, leading_rows(shape)});
    }
    return out;
  }
  const st::TensorInfo& info(std::size_t k) const { return *ck_.tensors()[order_[k].tensor].info; }
  Shape shape(std::size_t k) const {
    Shape out = info(k).shape;
    if (!out.empty()) out[0] = order_[k].rows;
    return out;
  }
  // Bytes per row of the first axis: the whole tensor for a scalar or an empty one.
  std::uint64_t row_bytes(std::size_t k) const {
    const st::TensorInfo& t = info(k);
    return t.shape.empty() || t.shape[0] == 0 ? t.size : t.size / static_cast<std::uint64_t>(t.shape[0]);
  }
  std::uint64_t first_byte(std::size_t k) const { return row_bytes(k) * static_cast<std::uint64_t>(order_[k].first_row); }
  std::uint64_t bytes(std::size_t k) const {
    const st::TensorInfo& t = info(k);
    return t.shape.empty() || t.shape[0] == 0 ? t.size : row_bytes(k) * static_cast<std::uint64_t>(order_[k].rows);
  }

  const st::Checkpoint& ck_;
  std::vector<Piece> order_;
  detail::ReadAhead reader_;
  std::size_t next_ = 0;
};

// Tensors larger than this are quantized a slab of rows at a time where the scheme allows.
constexpr std::uint64_t kPieceBytes = std::uint64_t{16} << 20;

// How many rows of the first axis each piece of a tensor gets: all of them, unless quantizing a
// slab of rows on its own gives the same codes and parameters as the whole tensor (its groups
// never span two rows: a scale per row, or blocks along a later axis; the slab's codes fill
// whole bytes; the input is float32, float16 or bfloat16, read in place), the tensor is larger
// than kPieceBytes and its rows are not. Then a piece's codes and parameters are the
// consecutive part of the whole tensor's, and the staging memory is two pieces, not two copies of
// the largest tensor (fresh memory is slow to touch on the virtual machines this runs on).
std::int64_t rows_per_piece(const st::TensorInfo& t, const Scheme& scheme) {
  const std::int64_t all = leading_rows(t.shape);
  if (t.shape.size() < 2 || all < 2 || t.size <= kPieceBytes) return all;
  if (!t.type || (*t.type != DType::f32 && *t.type != DType::f16 && *t.type != DType::bf16)) return all;
  const ParamLayout layout = ParamLayout::of(t.shape, scheme);
  const bool per_row = (layout.granularity == Granularity::channel && layout.outer == 1) ||
                       (layout.granularity == Granularity::block && layout.outer > 1);
  const std::uint64_t row_bytes = t.size / static_cast<std::uint64_t>(all);
  const std::int64_t row_values = checked_numel(t.shape) / all;
  if (!per_row || row_values * container_bits(scheme.bits) % 8 != 0 || row_bytes > kPieceBytes) return all;
  return static_cast<std::int64_t>(kPieceBytes / row_bytes);
}

// The largest codes of any piece.
std::size_t largest_codes(const std::vector<Piece>& pieces, const ModelReport& r) {
  std::size_t out = 0;
  for (const Piece& p : pieces) {
    const TensorRecord& t = r.tensors[p.tensor];
    const std::int64_t all = leading_rows(t.shape);
    const std::int64_t values = all == 0 ? 0 : checked_numel(t.shape) / all * p.rows;
    out = std::max(out, static_cast<std::size_t>(packed_size(values, t.scheme->bits)));
  }
  return out;
}

// Where each tensor of a checkpoint lives.
using Locations = std::unordered_map<std::string, st::Checkpoint::Entry>;
Locations locate(const st::Checkpoint& ck) {
  Locations out;
  for (const auto& e : ck.tensors()) out.emplace(e.info->name, e);
  return out;
}

}  // namespace

double TensorRecord::bits_per_weight() const noexcept {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n > 0 ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(n) : 0.0;
}

// --- quantize ---------------------------------------------------------------------------------

namespace {
// The value at `flat` of a float tensor, as float32 (for an error message).
float nonfinite_at(const TensorView& x, std::int64_t flat) {
  const auto* at = static_cast<const std::byte*>(x.data()) + flat * static_cast<std::int64_t>(dtype_size(x.dtype()));
  return to_f32(TensorView(at, x.dtype(), {1})).span<float>()[0];
}
}  // namespace

ModelReport quantize_model(const fs::path& input, const fs::path& output, const ModelQuantizeOptions& options) {
  const auto start = Clock::now();
  const st::Checkpoint ck = st::Checkpoint::open(input);
  if (ck.metadata().contains(kMetadataKey)) {
    throw Error(fmt::format("{}: already quantized by zeropoint (its __metadata__ has '{}'); dequantize it first",
                            input.string(), kMetadataKey));
  }
  const Plan plan(options.plan);

  ModelReport report;
  report.input = input;
  report.output = output;
  std::vector<st::PlannedTensor> planned;
  std::vector<PlanDecision> decisions;
  std::vector<std::pair<std::string, QuantizedEntry>> quantized;
  for (const auto& entry : ck.tensors()) {
    const st::TensorInfo& t = *entry.info;
    PlanDecision d;
    try {
      d = plan.decide(t.name, t.type, t.shape);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", ck.files()[entry.file].path().string(), e.what()));
    }
    TensorRecord r{t.name, t.dtype, t.shape, t.size, t.size, std::nullopt, d.reason, std::nullopt, std::nullopt, false};
    if (d.quantize) {
      r.scheme = d.scheme;
      r.bytes_out = static_cast<std::uint64_t>(quantized_bytes(t.shape, d.scheme));
      plan_quantized(t.name, t.shape, d.scheme, planned);
      quantized.emplace_back(t.name, QuantizedEntry{d.scheme, t.dtype, t.shape});
    } else {
      planned.push_back({t.name, t.dtype, t.shape});
    }
    report.bytes_in += r.bytes_in;
    report.bytes_out += r.bytes_out;
    report.tensors.push_back(std::move(r));
    decisions.push_back(std::move(d));
  }
  // A quantized tensor's parameters get new names; none may already be taken.
  std::set<std::string> names;
  for (const st::PlannedTensor& p : planned) {
    if (!names.insert(p.name).second) {
      throw Error(fmt::format("{}: the input already has a tensor named '{}', which quantizing would need for "
                              "codes or parameters; leave that tensor out with --keep",
                              input.string(), p.name));
    }
  }
  const OutputFiles files = output_files(output, planned, options.max_shard_bytes);
  refuse_overwriting_inputs(ck, files, input);
  if (options.dry_run) {
    report.seconds = seconds_since(start);
    return report;
  }

  std::map<std::string, std::string> metadata = ck.metadata();
  metadata[kMetadataKey] = describe_quantized(quantized);
  ShardedWriter writer(files, planned, metadata);
  std::vector<Piece> pieces;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    if (!decisions[i].quantize) continue;
    const st::TensorInfo& t = *ck.tensors()[i].info;
    const std::int64_t all = leading_rows(t.shape), per_piece = rows_per_piece(t, decisions[i].scheme);
    pieces.push_back({i, 0, std::min(per_piece, all)});  // an empty tensor too: quantize() says so
    for (std::int64_t row = per_piece; row < all; row += per_piece) {
      pieces.push_back({i, row, std::min(per_piece, all - row)});
    }
  }
  std::size_t next_piece = 0;
  QuantizedTensor q;  // reused: fresh memory is slow to touch
  detail::reserve_huge(q.data, largest_codes(pieces, report));
  TensorReadAhead reader(ck, pieces);
  std::uint64_t done = 0, total_out = 0;
  for (const st::PlannedTensor& p : planned) total_out += data_bytes(p);
  for (std::size_t i = 0; i < ck.tensors().size(); ++i) {
    const st::File& file = ck.files()[ck.tensors()[i].file];
    const st::TensorInfo& t = *ck.tensors()[i].info;
    TensorRecord& r = report.tensors[i];
    if (options.progress) options.progress(done, report.bytes_in, t.name);
    if (!decisions[i].quantize) {
      writer.write(file.bytes(t));
    } else {
      ObserveOptions observe = options.observe;
      observe.name = t.name;
      // Piece by piece (one, unless rows_per_piece allows more): the codes go out as they come,
      // the parameters follow them in the file and are gathered meanwhile.
      ErrorAccumulator error;
      std::vector<float> scale, offset;
      std::vector<std::byte> zero_point;
      const std::int64_t all = leading_rows(t.shape);
      const std::int64_t row_values = all == 0 ? 0 : checked_numel(t.shape) / all;
      for (; next_piece < pieces.size() && pieces[next_piece].tensor == i; ++next_piece) {
        const std::int64_t row = pieces[next_piece].first_row;
        const TensorView x = reader.next();
        try {
          detail::quantize_measuring(x, decisions[i].scheme, observe, q, error, row * row_values);
        } catch (const NonFiniteError& e) {
          const NonFiniteError whole =
              row == 0 ? e : detail::nonfinite_value_error(observe, nonfinite_at(x, e.flat_index()), t.shape,
                                                           row * row_values + e.flat_index());
          throw NonFiniteError(fmt::format("{}: {}", file.path().string(), whole.what()), whole.flat_index());
        } catch (const Error& e) {
          throw Error(fmt::format("{}: {}", file.path().string(), e.what()));
        }
        writer.write(std::as_bytes(std::span<const std::uint8_t>(q.data)));
        scale.insert(scale.end(), q.params.scale.begin(), q.params.scale.end());
        if (stores_zero_point(q.params.scheme)) {
          const Tensor codes = zero_points_as_codes(q.params);
          zero_point.insert(zero_point.end(), codes.bytes().begin(), codes.bytes().end());
        }
        if (q.params.scheme.zero_point == ZeroPointKind::float_offset) {
          offset.insert(offset.end(), q.params.offset.begin(), q.params.offset.end());
        }
        done += static_cast<std::uint64_t>(x.numel()) * dtype_size(x.dtype());
        if (options.progress) options.progress(done, report.bytes_in, t.name);
      }
      done -= t.size;  // counted again below, with the tensors left as they are
      r.error = error.result();
      writer.write(scale);
      writer.write(std::span<const std::byte>(zero_point));
      writer.write(offset);
    }
    file.release(t);
    done += t.size;
  }
  report.files = writer.commit(total_out, index_metadata(total_out));
  if (options.progress) options.progress(done, report.bytes_in, "");
  report.seconds = seconds_since(start);
  return report;
}

// --- dequantize -------------------------------------------------------------------------------

ModelReport dequantize_model(const fs::path& input, const fs::path& output, std::optional<DType> dtype,
                             std::uint64_t max_shard_bytes, const Progress& progress) {
  const auto start = Clock::now();
  const st::Checkpoint ck = st::Checkpoint::open(input);
  const auto entries = read_quantized_entries(ck, input);
  if (entries.empty()) {
    throw Error(fmt::format("{}: no quantized tensors (its __metadata__ has no '{}' entry): nothing to dequantize",
                            input.string(), kMetadataKey));
  }
  if (dtype && !is_float(*dtype)) throw Error(fmt::format("cannot dequantize to {}: choose f32, f16 or bf16", dtype_name(*dtype)));
  const Locations where = locate(ck);
  // Tensors that belong to a quantized one: its codes name it, the parameters are folded in.
  std::unordered_map<std::string, std::string> codes_of;  // stored codes name -> tensor name
  std::set<std::string> parameters;
  for (const auto& [name, e] : entries) {
    const StoredNames n = stored_names(name, e.scheme);
    codes_of[n.codes] = name;
    for (const std::string* p : {&n.scale, &n.zero_point, &n.offset}) {
      if (p->empty()) continue;
      if (!where.contains(*p)) throw Error(fmt::format("{}: tensor '{}' (parameters of '{}') is missing", input.string(), *p, name));
      parameters.insert(*p);
    }
    if (!where.contains(n.codes)) throw Error(fmt::format("{}: tensor '{}' (codes of '{}') is missing", input.string(), n.codes, name));
  }

  auto out_dtype_of = [&](const QuantizedEntry& e) -> DType {
    if (dtype) return *dtype;
    const auto info = st::dtype_info(e.dtype);
    return info && info->dtype && is_float(*info->dtype) ? *info->dtype : DType::f32;
  };
  ModelReport report;
  report.input = input;
  report.output = output;
  std::vector<st::PlannedTensor> planned;
  std::vector<const st::Checkpoint::Entry*> sources;  // per planned tensor: its codes or itself
  for (const auto& entry : ck.tensors()) {
    const st::TensorInfo& t = *entry.info;
    if (parameters.contains(t.name)) continue;
    if (const auto c = codes_of.find(t.name); c != codes_of.end()) {
      const QuantizedEntry& e = entries.at(c->second);
      const DType to = out_dtype_of(e);
      planned.push_back({c->second, std::string(st::dtype_name(to)), e.shape});
      TensorRecord r{c->second, std::string(st::dtype_name(to)), e.shape, 0,
                     static_cast<std::uint64_t>(checked_numel(e.shape)) * dtype_size(to), e.scheme, "", std::nullopt, std::nullopt, false};
      report.tensors.push_back(std::move(r));
    } else {
      planned.push_back({t.name, t.dtype, t.shape});
      report.tensors.push_back({t.name, t.dtype, t.shape, t.size, t.size, std::nullopt, "", std::nullopt, std::nullopt, false});
    }
    sources.push_back(&entry);
  }
  const OutputFiles files = output_files(output, planned, max_shard_bytes);
  refuse_overwriting_inputs(ck, files, input);
  std::map<std::string, std::string> metadata = ck.metadata();
  metadata.erase(kMetadataKey);
  ShardedWriter writer(files, planned, metadata);

  auto bytes_of = [&](const std::string& name, const std::string& dtype_expected, const Shape& shape_expected,
                      const std::string& owner) {
    const st::Checkpoint::Entry& e = where.at(name);
    const st::File& f = ck.files()[e.file];
    if (e.info->dtype != dtype_expected || e.info->shape != shape_expected) {
      throw Error(fmt::format("{}: tensor '{}' ({} of '{}') is {} {}, expected {} {}", f.path().string(), name,
                              name == owner ? "codes" : "parameters", owner, e.info->dtype, shape_str(e.info->shape),
                              dtype_expected, shape_str(shape_expected)));
    }
    report.bytes_in += e.info->size;
    return f.bytes(*e.info);
  };
  std::uint64_t done = 0, total = 0;
  for (const auto& e : ck.tensors()) total += e.info->size;
  for (std::size_t i = 0; i < planned.size(); ++i) {
    const st::Checkpoint::Entry& src = *sources[i];
    const st::File& file = ck.files()[src.file];
    if (progress) progress(done, total, planned[i].name);
    const auto c = codes_of.find(src.info->name);
    if (c == codes_of.end()) {
      writer.write(file.bytes(*src.info));
      report.bytes_in += src.info->size;
      done += src.info->size;
      file.release(*src.info);
      continue;
    }
    const std::string& name = c->second;
    const QuantizedEntry& e = entries.at(name);
    const StoredNames n = stored_names(name, e.scheme);
    const ParamLayout layout = ParamLayout::of(e.shape, e.scheme);
    QuantizedTensor q;
    q.shape = e.shape;
    q.params.scheme = e.scheme;
    q.params.param_shape = layout.param_shape;
    const auto groups = static_cast<std::size_t>(layout.groups);
    const auto codes = bytes_of(n.codes, stored_codes_dtype(e.scheme), stored_codes_shape(e.shape, e.scheme), name);
    q.data.assign(reinterpret_cast<const std::uint8_t*>(codes.data()),
                  reinterpret_cast<const std::uint8_t*>(codes.data()) + codes.size());
    const auto scale = bytes_of(n.scale, "F32", layout.param_shape, name);
    q.params.scale.resize(groups);
    if (groups > 0) std::memcpy(q.params.scale.data(), scale.data(), scale.size());
    q.params.zero_point.assign(groups, e.scheme.symmetric ? e.scheme.symmetric_zero_point() : 0);
    q.params.offset.assign(groups, 0.0f);
    if (!n.zero_point.empty()) {
      const std::string zdtype(st::dtype_name(code_dtype(e.scheme)));
      const auto zp = bytes_of(n.zero_point, zdtype, layout.param_shape, name);
      Tensor z(code_dtype(e.scheme), layout.param_shape);
      std::memcpy(z.data(), zp.data(), zp.size());
      q.params.zero_point = zero_points_from_codes(z);
    }
    if (!n.offset.empty()) {
      const auto off = bytes_of(n.offset, "F32", layout.param_shape, name);
      if (groups > 0) std::memcpy(q.params.offset.data(), off.data(), off.size());
    }
    const DType to = out_dtype_of(e);
    Tensor values;
    try {
      q.params.check_fits(q.shape);
      values = to == DType::f64 ? from_f32(dequantize(q), to) : dequantize(q, to);  // 16-bit: narrowed in the same pass
    } catch (const Error& ex) {
      throw Error(fmt::format("{}: tensor '{}': {}", file.path().string(), name, ex.what()));
    }
    writer.write(values.bytes());
    done += codes.size();
    file.release(*src.info);
  }
  std::uint64_t total_out = 0;
  for (const st::PlannedTensor& p : planned) total_out += data_bytes(p);
  for (const TensorRecord& r : report.tensors) report.bytes_out += r.bytes_out;
  report.files = writer.commit(total_out, index_metadata(total_out));
  report.seconds = seconds_since(start);
  return report;
}

// --- inspect ----------------------------------------------------------------------------------

ModelReport inspect_model(const fs::path& input) {
  const auto start = Clock::now();
  const st::Checkpoint ck = st::Checkpoint::open(input);
  const auto entries = read_quantized_entries(ck, input);
  const Locations where = locate(ck);
  std::unordered_map<std::string, std::string> owner;  // stored name -> quantized tensor
  for (const auto& [name, e] : entries) {
    const StoredNames n = stored_names(name, e.scheme);
    for (const std::string* p : {&n.codes, &n.scale, &n.zero_point, &n.offset}) {
      if (!p->empty() && where.contains(*p)) owner[*p] = name;
    }
  }
  ModelReport report;
  report.input = input;
  std::map<std::string, std::size_t> record_of;
  for (const auto& entry : ck.tensors()) {
    const st::TensorInfo& t = *entry.info;
    const auto o = owner.find(t.name);
    if (o == owner.end()) {
      report.tensors.push_back({t.name, t.dtype, t.shape, t.size, t.size, std::nullopt, "", std::nullopt, std::nullopt, false});
      report.bytes_in += t.size;
      report.bytes_out += t.size;
      continue;
    }
    const QuantizedEntry& e = entries.at(o->second);
    auto [it, fresh] = record_of.emplace(o->second, report.tensors.size());
    if (fresh) {
      const auto info = st::dtype_info(e.dtype);
      const std::uint64_t original = static_cast<std::uint64_t>(checked_numel(e.shape)) * (info ? info->size : 4);
      report.tensors.push_back({o->second, e.dtype, e.shape, original, 0, e.scheme, "", std::nullopt, std::nullopt, false});
      report.bytes_in += original;
    }
    report.tensors[it->second].bytes_out += t.size;
    report.bytes_out += t.size;
  }
  report.seconds = seconds_since(start);
  return report;
}

// --- analyze ----------------------------------------------------------------------------------

Candidate Candidate::parse(std::string_view text) {
  if (const auto t = ggml::type_from_name(text); t && ggml::traits(*t).quantized) {
    if (ggml::traits(*t).quantize == nullptr) {
      throw Error(fmt::format("'{}': zeropoint cannot write this ggml type, so it cannot measure it", text));
    }
    return Candidate{std::nullopt, t};
  }
  return Candidate{Scheme::parse(text), std::nullopt};
}

std::string Candidate::str() const {
  return scheme ? scheme->str() : ggml_type ? std::string(ggml::traits(*ggml_type).name) : std::string();
}

namespace {

// One tensor under every candidate.
AnalyzeReport::Row measure_candidates(const TensorView& x, const std::string& name, const std::string& dtype,
                                      std::uint64_t bytes_in, const std::vector<Candidate>& candidates,
                                      const ObserveOptions& observe, const fs::path& file) {
  AnalyzeReport::Row row{name, x.shape(), dtype, bytes_in, {}, {}};
  ObserveOptions named = observe;
  named.name = name;
  QuantizedTensor q;
  for (const Candidate& c : candidates) {
    row.error.emplace_back();
    try {
      if (c.scheme) {
        (void)ParamLayout::of(x.shape(), *c.scheme);
        quantize(x, *c.scheme, named, q, row.error.back());
        row.bytes_out.push_back(quantized_bytes(x.shape(), *c.scheme));
      } else {
        row.bytes_out.push_back(detail::measure_ggml(x, *c.ggml_type, row.error.back()));
        if (const ErrorMetrics& m = row.error.back(); m.skipped > 0 && !observe.ignore_nonfinite) {
          throw NonFiniteError(fmt::format("tensor '{}' holds {} NaN or infinite value{}", name, m.skipped,
                                           m.skipped == 1 ? "" : "s"),
                               -1);
        }
      }
    } catch (const NonFiniteError& e) {
      throw NonFiniteError(fmt::format("{}: {} (candidate {})", file.string(), e.what(), c.str()), e.flat_index());
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {} (candidate {})", file.string(), e.what(), c.str()));
    }
  }
  return row;
}

std::optional<std::regex> filter_regex(const std::string& filter) {
  if (filter.empty()) return std::nullopt;
  try {
    return std::regex(filter, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(fmt::format("'{}' is not a regular expression: {}", filter, e.what()));
  }
}

AnalyzeReport analyze_gguf(const fs::path& input, const std::vector<Candidate>& candidates, const std::string& filter,
                           const ObserveOptions& observe, const Progress& progress) {
  const auto start = Clock::now();
  const gguf::File file = gguf::File::open(input);
  const std::optional<std::regex> only = filter_regex(filter);
  AnalyzeReport report;
  report.input = input;
  report.candidates = candidates;
  std::uint64_t total = 0, done = 0;
  for (const gguf::TensorInfo& t : file.tensors()) total += t.bytes;
  for (const gguf::TensorInfo& t : file.tensors()) {
    std::optional<DType> dtype;
    if (t.type == ggml::Type::f32) dtype = DType::f32;
    if (t.type == ggml::Type::f16) dtype = DType::f16;
    if (t.type == ggml::Type::bf16) dtype = DType::bf16;
    if (!dtype || t.dims.size() < 2 || (only && !std::regex_search(t.name, *only))) {
      report.other_bytes += t.bytes;
      done += t.bytes;
      continue;
    }
    if (progress) progress(done, total, t.name);
    Shape shape;
    for (auto it = t.dims.rbegin(); it != t.dims.rend(); ++it) shape.push_back(static_cast<std::int64_t>(*it));
    const TensorView x(file.data(t).data(), *dtype, shape);
    report.rows.push_back(measure_candidates(x, t.name, std::string(ggml::traits(t.type).name), t.bytes, candidates,
                                             observe, input));
    file.release(t);
    done += t.bytes;
  }
  if (progress) progress(total, total, "");
  report.seconds = seconds_since(start);
  return report;
}

// ONNX: the weights of Conv/ConvTranspose/MatMul/Gemm, each candidate's channel or block axis
// put where quantize would put it for that operator (output channels; the reduction axis).
AnalyzeReport analyze_onnx(const fs::path& input, const std::vector<Candidate>& candidates, const std::string& filter,
                           const ObserveOptions& observe, const Progress& progress) {
  const auto start = Clock::now();
  const std::optional<std::regex> only = filter_regex(filter);
  OnnxQuantizeOptions plan;
  plan.dry_run = true;
  std::map<std::string, std::pair<int, int>> axes;  // weight -> (channel axis, block axis)
  for (const TensorRecord& r : quantize_onnx(input, {}, plan).tensors) axes[r.name].first = r.scheme ? r.scheme->axis : 0;
  plan.weight_scheme = Scheme::parse("int4:block=2");
  for (const TensorRecord& r : quantize_onnx(input, {}, plan).tensors) axes[r.name].second = r.scheme ? r.scheme->axis : 0;
  AnalyzeReport report;
  report.input = input;
  report.candidates = candidates;
  auto weights = onnx_weights(input);
  std::uint64_t total = 0, done = 0;
  for (const auto& [name, values] : weights) total += values.nbytes();
  for (const auto& [name, values] : weights) {
    const auto it = axes.find(name);
    if (it == axes.end() || (only && !std::regex_search(name, *only))) {
      report.other_bytes += values.nbytes();
      continue;
    }
    if (progress) progress(done, total, name);
    std::vector<Candidate> placed = candidates;
    for (Candidate& c : placed) {
      if (c.scheme && c.scheme->granularity == Granularity::channel) c.scheme->axis = it->second.first;
      if (c.scheme && c.scheme->granularity == Granularity::block) c.scheme->axis = it->second.second;
    }
    report.rows.push_back(measure_candidates(values.view(), name, "FLOAT", values.nbytes(), placed, observe, input));
    done += values.nbytes();
  }
  if (progress) progress(total, total, "");
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace

AnalyzeReport analyze_model(const fs::path& input, const std::vector<Candidate>& candidates, const std::string& filter,
                            const ObserveOptions& observe, const Progress& progress) {
  if (candidates.empty()) throw Error("analyze needs at least one candidate scheme or type");
  if (is_gguf_path(input)) return analyze_gguf(input, candidates, filter, observe, progress);
  if (is_onnx_path(input)) return analyze_onnx(input, candidates, filter, observe, progress);
  const auto start = Clock::now();
  const st::Checkpoint ck = st::Checkpoint::open(input);
  if (ck.metadata().contains(kMetadataKey)) {
    throw Error(fmt::format("{}: already quantized by zeropoint; analyze the float checkpoint instead", input.string()));
  }
  const std::optional<std::regex> only = filter_regex(filter);
  AnalyzeReport report;
  report.input = input;
  report.candidates = candidates;
  std::uint64_t total = 0, done = 0;
  for (const auto& e : ck.tensors()) total += e.info->size;
  auto is_candidate = [&](const st::TensorInfo& t) {
    return t.type && is_float(*t.type) && t.shape.size() >= 2 && (!only || std::regex_search(t.name, *only));
  };
  std::vector<std::size_t> to_read;
  for (std::size_t i = 0; i < ck.tensors().size(); ++i) {
    if (is_candidate(*ck.tensors()[i].info)) to_read.push_back(i);
  }
  TensorReadAhead reader(ck, std::move(to_read));
  for (const auto& entry : ck.tensors()) {
    const st::File& file = ck.files()[entry.file];
    const st::TensorInfo& t = *entry.info;
    if (!is_candidate(t)) {
      report.other_bytes += t.size;
      done += t.size;
      continue;
    }
    if (progress) progress(done, total, t.name);
    const TensorView x = reader.next();
    report.rows.push_back(measure_candidates(x, t.name, t.dtype, t.size, candidates, observe, file.path()));
    file.release(t);
    done += t.size;
  }
  if (progress) progress(total, total, "");
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace zp
