// Whole GGUF models: quantize (llama-quantize's job), inspect, and convert to and from safetensors,
// one tensor (quantize: 16 MiB of its rows) at a time so that memory follows the largest tensor,
// not the model.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

#include "pipeline/ggml_convert.hpp"
#include "pipeline/staging.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/gguf.hpp"
#include "zeropoint/formats/imatrix.hpp"
#include "zeropoint/formats/safetensors.hpp"
#include "zeropoint/ggml_model.hpp"

namespace zp {
namespace {

namespace fs = std::filesystem;
namespace st = safetensors;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Values per batch: what is converted before it is handed to the writer (64 MiB of float32).
constexpr std::uint64_t kBatch = std::uint64_t{1} << 24;

Shape row_major(const std::vector<std::uint64_t>& dims) {
  Shape shape;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) shape.push_back(static_cast<std::int64_t>(*it));
  return shape;
}

std::vector<std::uint64_t> ggml_order(const Shape& shape) {
  std::vector<std::uint64_t> dims;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it) dims.push_back(static_cast<std::uint64_t>(*it));
  if (dims.empty()) dims.push_back(1);  // a scalar: one element
  return dims;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  return fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

void refuse_split(const gguf::File& in) {
  const gguf::Value* count = in.find("split.count");
  if (count && count->to_u64().value_or(1) > 1) {
    throw Error(fmt::format("{}: one part of a split model (split.count = {}); merge the parts first "
                            "(llama-gguf-split --merge)",
                            in.path().string(), *count->to_u64()));
  }
}

// A tensor's rows [first_row, first_row + rows) (rows: the product of dims[1..]), converted as one
// batch: whole rows, never across two matrices of a 3-D tensor with importance weights (one weight
// per column for each matrix, llama.cpp's imatrix: dims[0] x dims[2] values).
struct RowPiece {
  std::size_t tensor;  // index into the file's tensors
  std::uint64_t first_row = 0, rows = 0;
};

// Input bytes per piece: large enough that a call's overhead is noise, small enough that the two
// staging buffers stay small (fresh memory is slow to touch on the virtual machines this runs on).
constexpr std::uint64_t kPieceBytes = std::uint64_t{16} << 20;

// Appends the pieces of tensor `index`.
void add_pieces(std::size_t index, const gguf::TensorInfo& t, std::size_t matrices, std::vector<RowPiece>& out) {
  const std::uint64_t rows = t.rows();
  const std::uint64_t row_bytes = rows == 0 ? t.bytes : t.bytes / rows;
  const std::uint64_t per_piece = std::max<std::uint64_t>(1, kPieceBytes / std::max<std::uint64_t>(row_bytes, 1));
  const std::uint64_t rows_per_matrix = rows / std::max<std::size_t>(matrices, 1);
  if (rows == 0) {
    out.push_back({index, 0, 0});
    return;
  }
  for (std::uint64_t m = 0; m < std::max<std::size_t>(matrices, 1); ++m) {
    for (std::uint64_t r = 0; r < rows_per_matrix; r += per_piece) {
      out.push_back({index, m * rows_per_matrix + r, std::min(per_piece, rows_per_matrix - r)});
    }
  }
}

// Converts a piece (its bytes in `data`) into the writer, adding its error to `error`.
void convert_piece(std::span<const std::uint8_t> data, const gguf::TensorInfo& t, const RowPiece& piece, ggml::Type to,
                   std::span<const float> importance, gguf::Writer& out, std::vector<std::uint8_t>& buffer,
                   ErrorAccumulator& error) {
  if (piece.rows == 0) return;
  const std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
  std::span<const float> weights;
  if (!importance.empty()) {
    const std::uint64_t rows_per_matrix = t.rows() / (importance.size() / row);
    weights = importance.subspan(piece.first_row / rows_per_matrix * row, row);
  }
  const std::uint64_t count = piece.rows * row;
  const detail::GgmlValues values{data.data(), t.type, count, weights};
  buffer.resize(*ggml::row_bytes(to, count));
  detail::convert_values(values, to, buffer, error, static_cast<std::int64_t>(piece.first_row * row));
  out.write(t.name, buffer);
}

// How a target type treats importance weights: llama.cpp's quantizers for these use them and so do
// zeropoint's; for q8_0 and the float types llama.cpp ignores them; the rest use them in
// llama.cpp but not (yet) in zeropoint.
enum class Importance { used, ignored, unsupported };
Importance importance_of(ggml::Type t) {
  switch (t) {
    case ggml::Type::q2_K:
    case ggml::Type::q3_K:
    case ggml::Type::q4_K:
    case ggml::Type::q5_K:
    case ggml::Type::q6_K: return Importance::used;
    case ggml::Type::q8_0:
    case ggml::Type::f32:
    case ggml::Type::f16:
    case ggml::Type::bf16: return Importance::ignored;
    default: return Importance::unsupported;
  }
}

}  // namespace

// --- quantize ---------------------------------------------------------------------------------

ModelReport quantize_gguf(const fs::path& input, const fs::path& output, const GgufQuantizeOptions& options) {
  const auto start = Clock::now();
  const GgmlPlan plan(options.plan);
  const gguf::File in = gguf::File::open(input);
  refuse_split(in);
  if (!options.dry_run && same_file(input, output)) {
    throw Error(fmt::format("{}: the output is the input; write to another file", output.string()));
  }
  const bool has_output = in.find_tensor("output.weight") != nullptr;
  std::optional<imatrix::ImportanceMatrix> importance;
  if (!options.imatrix.empty()) importance = imatrix::ImportanceMatrix::read(options.imatrix);
  std::vector<std::span<const float>> weights(in.tensors().size());

  ModelReport report;
  report.input = input;
  report.output = output;
  std::vector<gguf::PlannedTensor> planned;
  std::vector<GgmlDecision> decisions;
  for (const gguf::TensorInfo& t : in.tensors()) {
    GgmlDecision d;
    try {
      d = plan.decide(t.name, t.type, t.dims, has_output);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", input.string(), e.what()));
    }
    if (importance && d.convert) {
      std::span<const float> w;
      try {
        w = importance->weights_for(t.name, t.dims);
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", options.imatrix.string(), e.what()));
      }
      if (w.empty()) {
        d.reason += "; no importance weights for it";
      } else if (importance_of(d.type) == Importance::used) {
        weights[planned.size()] = w;
        d.reason += "; importance weights";
      } else if (importance_of(d.type) == Importance::unsupported) {
        d.reason += fmt::format("; importance weights NOT used (zeropoint has no importance-weighted {}: these are "
                                "llama.cpp's bytes without an imatrix)",
                                ggml::traits(d.type).name);
      }
    }
    planned.push_back({t.name, t.dims, d.type});
    TensorRecord r;
    r.name = t.name;
    r.dtype = std::string(ggml::traits(t.type).name);
    r.shape = row_major(t.dims);
    r.bytes_in = t.bytes;
    r.bytes_out = d.convert ? gguf::tensor_bytes(d.type, t.dims) : t.bytes;
    r.reason = d.reason;
    r.ggml_type = d.type;
    r.converted = d.convert;
    report.bytes_in += r.bytes_in;
    report.bytes_out += r.bytes_out;
    report.tensors.push_back(std::move(r));
    decisions.push_back(std::move(d));
  }
  if (options.dry_run) {
    report.seconds = seconds_since(start);
    return report;
  }

  gguf::Metadata metadata = in.metadata();
  if (const auto ftype = gguf::file_type_of(options.plan.type)) gguf::set_file_type(metadata, *ftype);
  gguf::set_quantization_version(metadata);
  gguf::Writer writer(output, std::move(metadata), planned);

  std::uint64_t done = 0;
  const std::uint64_t total = report.bytes_in;
  std::vector<std::uint8_t> buffer;
  std::vector<RowPiece> pieces;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    if (!decisions[i].convert) continue;
    const gguf::TensorInfo& t = in.tensors()[i];
    const std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
    add_pieces(i, t, weights[i].empty() ? 1 : weights[i].size() / row, pieces);
  }
  auto row_bytes_of = [&](const RowPiece& p) {
    const gguf::TensorInfo& t = in.tensors()[p.tensor];
    return t.rows() == 0 ? t.bytes : t.bytes / t.rows();
  };
  detail::ReadAhead reader(
      pieces.size(),
      [&](std::size_t k) {
        const RowPiece& p = pieces[k];
        return static_cast<std::size_t>(in.tensors()[p.tensor].rows() == 0 ? in.tensors()[p.tensor].bytes
                                                                            : row_bytes_of(p) * p.rows);
      },
      [&](std::size_t k, std::size_t offset, std::span<std::byte> out) {
        const RowPiece& p = pieces[k];
        in.read(in.tensors()[p.tensor], row_bytes_of(p) * p.first_row + offset,
                {reinterpret_cast<std::uint8_t*>(out.data()), out.size()});
      },
      static_cast<std::size_t>(kPieceBytes));
  std::size_t next_piece = 0;
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    if (options.progress) options.progress(done, total, t.name);
    auto advance = [&](std::uint64_t bytes) {
      done += bytes;
      if (options.progress) options.progress(done, total, t.name);
    };
    try {
      if (decisions[i].convert) {
        ErrorAccumulator error;
        for (; next_piece < pieces.size() && pieces[next_piece].tensor == i; ++next_piece) {
          const std::span<const std::byte> staged = reader.next();
          convert_piece({reinterpret_cast<const std::uint8_t*>(staged.data()), staged.size()}, t, pieces[next_piece],
                        decisions[i].type, weights[i], writer, buffer, error);
          advance(staged.size());
        }
        report.tensors[i].error = error.result();
      } else {
        const std::span<const std::uint8_t> data = in.data(t);
        for (std::uint64_t at = 0; at < data.size(); at += kBatch) {
          const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, data.size() - at));
          writer.write(t.name, data.subspan(at, n));
          advance(n);
        }
        in.release(t);
      }
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor '{}': {}", input.string(), t.name, e.what()));
    }
  }
  writer.commit();
  if (options.progress) options.progress(total, total, "");
  report.files.push_back(output);
  report.seconds = seconds_since(start);
  return report;
}

// --- inspect ----------------------------------------------------------------------------------

namespace {

// A metadata value as short text: scalars as they are, short arrays in full, long ones counted.
std::string value_text(const gguf::Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return x;
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, gguf::Array>) {
          constexpr std::size_t kShown = 8;
          std::string text = "[";
          std::visit(
              [&](const auto& items) {
                using Items = std::decay_t<decltype(items)>;
                for (std::size_t i = 0; i < std::min(items.size(), kShown); ++i) {
                  if (i > 0) text += ", ";
                  if constexpr (std::is_same_v<Items, std::vector<std::string>>) {
                    text += fmt::format("\"{}\"", items[i]);
                  } else if constexpr (std::is_same_v<Items, std::vector<gguf::Array>>) {
                    text += fmt::format("[{} items]", items[i].size());
                  } else if constexpr (std::is_same_v<Items, std::vector<bool>>) {
                    text += items[i] ? "true" : "false";
                  } else if constexpr (std::is_same_v<Items, std::vector<std::uint8_t>> ||
                                       std::is_same_v<Items, std::vector<std::int8_t>>) {
                    text += fmt::format("{}", static_cast<int>(items[i]));
                  } else {
                    text += fmt::format("{}", items[i]);
                  }
                }
                if (items.size() > kShown) text += fmt::format(", ... ({} {} items)", items.size(), gguf::type_name(x.element_type()));
              },
              x.items);
          return text + "]";
        } else if constexpr (std::is_same_v<T, std::uint8_t> || std::is_same_v<T, std::int8_t>) {
          return fmt::format("{}", static_cast<int>(x));
        } else {
          return fmt::format("{}", x);
        }
      },
      v.storage());
}

}  // namespace

ModelReport inspect_gguf(const fs::path& input) {
  const auto start = Clock::now();
  const gguf::File in = gguf::File::open(input);
  ModelReport report;
  report.input = input;
  for (const auto& [key, value] : in.metadata()) report.metadata.emplace_back(key, value_text(value));
  for (const gguf::TensorInfo& t : in.tensors()) {
    TensorRecord r;
    r.name = t.name;
    r.dtype = std::string(ggml::traits(t.type).name);
    r.shape = row_major(t.dims);
    r.bytes_in = r.bytes_out = t.bytes;
    r.ggml_type = t.type;
    report.bytes_in += t.bytes;
    report.bytes_out += t.bytes;
    report.tensors.push_back(std::move(r));
  }
  report.seconds = seconds_since(start);
  return report;
}

// --- convert ----------------------------------------------------------------------------------

namespace {

struct TypeMapping {
  std::string_view safetensors;
  ggml::Type ggml;
};
// Element types both formats have.
constexpr TypeMapping kSameTypes[] = {{"F32", ggml::Type::f32}, {"F16", ggml::Type::f16}, {"BF16", ggml::Type::bf16},
                                      {"F64", ggml::Type::f64}, {"I8", ggml::Type::i8},   {"I16", ggml::Type::i16},
                                      {"I32", ggml::Type::i32}, {"I64", ggml::Type::i64}};

std::optional<ggml::Type> ggml_of(std::string_view dtype) {
  for (const TypeMapping& m : kSameTypes) {
    if (m.safetensors == dtype) return m.ggml;
  }
  return std::nullopt;
}
std::optional<std::string_view> safetensors_of(ggml::Type type) {
  for (const TypeMapping& m : kSameTypes) {
    if (m.ggml == type) return m.safetensors;
  }
  return std::nullopt;
}

// Copies a tensor's bytes in batches, so that the writer's buffer and the mapping's resident
// pages stay small.
template <class Write>
void copy_in_batches(std::span<const std::uint8_t> data, Write&& write, const std::function<void(std::uint64_t)>& advance) {
  for (std::uint64_t at = 0; at < data.size(); at += kBatch) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kBatch, data.size() - at));
    write(data.subspan(at, n));
    advance(n);
  }
}

ModelReport safetensors_to_gguf(const fs::path& input, const fs::path& output, const ConvertOptions& options) {
  const st::Checkpoint ck = st::Checkpoint::open(input);
  if (ck.metadata().contains("zeropoint")) {
    throw Error(fmt::format("{}: quantized by zeropoint; dequantize it first (zeropoint dequantize), then convert",
                            input.string()));
  }
  ModelReport report;
  report.input = input;
  report.output = output;
  gguf::Metadata metadata;
  for (const auto& [key, value] : ck.metadata()) {
    if (key != gguf::kAlignmentKey) metadata.insert(key, gguf::Value(value));
  }
  std::vector<gguf::PlannedTensor> planned;
  for (const auto& entry : ck.tensors()) {
    const st::TensorInfo& t = *entry.info;
    const fs::path& file = ck.files()[entry.file].path();
    const auto type = ggml_of(t.dtype);
    if (!type) {
      throw Error(fmt::format("{}: tensor '{}' is {}, which GGUF has no type for", file.string(), t.name, t.dtype));
    }
    if (t.shape.size() > gguf::kMaxDims) {
      throw Error(fmt::format("{}: tensor '{}' has {} dimensions; GGUF allows at most {}", file.string(), t.name,
                              t.shape.size(), gguf::kMaxDims));
    }
    if (t.name.size() > gguf::kMaxNameBytes) {
      throw Error(fmt::format("{}: tensor name '{}' is {} bytes; GGUF allows at most {}", file.string(), t.name,
                              t.name.size(), gguf::kMaxNameBytes));
    }
    planned.push_back({t.name, ggml_order(t.shape), *type});
    TensorRecord r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.bytes_in = r.bytes_out = t.size;
    r.ggml_type = type;
    report.bytes_in += t.size;
    report.bytes_out += t.size;
    report.tensors.push_back(std::move(r));
  }
  gguf::Writer writer(output, std::move(metadata), planned);
  std::uint64_t done = 0;
  for (const auto& entry : ck.tensors()) {
    const st::File& file = ck.files()[entry.file];
    const st::TensorInfo& t = *entry.info;
    const std::span<const std::byte> bytes = file.bytes(t);
    copy_in_batches({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()},
                    [&](std::span<const std::uint8_t> piece) { writer.write(t.name, piece); },
                    [&](std::uint64_t n) {
                      done += n;
                      if (options.progress) options.progress(done, report.bytes_in, t.name);
                    });
    file.release(t);
  }
  writer.commit();
  report.files.push_back(output);
  return report;
}

ModelReport gguf_to_safetensors(const fs::path& input, const fs::path& output, const ConvertOptions& options) {
  const ggml::Type expand_to = options.dtype == DType::f16    ? ggml::Type::f16
                               : options.dtype == DType::bf16 ? ggml::Type::bf16
                               : options.dtype == DType::f32  ? ggml::Type::f32
                                                              : throw Error("convert expands block formats to f32, f16 or bf16 only");
  const gguf::File in = gguf::File::open(input);
  refuse_split(in);
  ModelReport report;
  report.input = input;
  report.output = output;
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : in.metadata()) {
    if (value.array() == nullptr) metadata[key] = value_text(value);  // arrays (vocabularies) are not carried
  }
  std::vector<st::PlannedTensor> planned;
  std::vector<bool> expand;
  for (const gguf::TensorInfo& t : in.tensors()) {
    TensorRecord r;
    r.name = t.name;
    r.dtype = std::string(ggml::traits(t.type).name);
    r.shape = row_major(t.dims);
    r.bytes_in = t.bytes;
    std::string_view dtype;
    if (const auto same = safetensors_of(t.type)) {
      dtype = *same;
      r.bytes_out = t.bytes;
      expand.push_back(false);
    } else if (ggml::traits(t.type).dequantize != nullptr) {
      dtype = *safetensors_of(expand_to);
      r.bytes_out = *ggml::row_bytes(expand_to, t.elements());
      r.converted = true;
      expand.push_back(true);
    } else {
      throw Error(fmt::format("{}: tensor '{}' is {}, which zeropoint cannot read back to floats", input.string(),
                              t.name, ggml::traits(t.type).name));
    }
    r.ggml_type = t.type;
    planned.push_back({t.name, std::string(dtype), r.shape});
    report.bytes_in += r.bytes_in;
    report.bytes_out += r.bytes_out;
    report.tensors.push_back(std::move(r));
  }
  st::Writer writer(output, planned, metadata);
  auto write = [&](std::span<const std::uint8_t> piece) {
    writer.write({reinterpret_cast<const std::byte*>(piece.data()), piece.size()});
  };
  std::uint64_t done = 0;
  std::vector<std::uint8_t> buffer;
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const gguf::TensorInfo& t = in.tensors()[i];
    auto advance = [&](std::uint64_t n) {
      done += n;
      if (options.progress) options.progress(done, report.bytes_in, t.name);
    };
    try {
      if (!expand[i]) {
        copy_in_batches(in.data(t), write, advance);
      } else {
        const ggml::TypeTraits& src = ggml::traits(t.type);
        const std::span<const std::uint8_t> data = in.data(t);
        std::vector<float> values;
        for (std::uint64_t first = 0; first < t.elements(); first += kBatch) {
          const std::uint64_t count = std::min(kBatch, t.elements() - first);
          values.resize(count);
          src.dequantize(data.subspan(first / src.block_size * src.block_bytes, count / src.block_size * src.block_bytes),
                         values);
          if (expand_to == ggml::Type::f32) {
            write({reinterpret_cast<const std::uint8_t*>(values.data()), count * sizeof(float)});
          } else {
            buffer.resize(count * 2);
            ggml::traits(expand_to).quantize(values, buffer, {});
            write(buffer);
          }
          advance(count / src.block_size * src.block_bytes);
        }
      }
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor '{}': {}", input.string(), t.name, e.what()));
    }
    in.release(t);
  }
  writer.commit();
  report.files.push_back(output);
  return report;
}

}  // namespace

ModelReport convert_model(const fs::path& input, const fs::path& output, const ConvertOptions& options) {
  const auto start = Clock::now();
  if (same_file(input, output)) throw Error(fmt::format("{}: the output is the input; write to another file", output.string()));
  ModelReport report;
  if (is_gguf_path(output)) {
    if (is_gguf_path(input)) throw Error("both files are GGUF: to change tensor types use zeropoint quantize --type");
    report = safetensors_to_gguf(input, output, options);
  } else if (output.extension() == ".safetensors") {
    if (!is_gguf_path(input)) throw Error("convert turns safetensors into GGUF and GGUF into safetensors; the input is not GGUF");
    report = gguf_to_safetensors(input, output, options);
  } else {
    throw Error(fmt::format("{}: the output must end in .gguf or .safetensors", output.string()));
  }
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace zp
