#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "core/file_io.hpp"
#include "formats/npy/npy_stream.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/formats/npy.hpp"

namespace zp::npz {
namespace {

constexpr std::string_view kSuffix = ".npy";

// Deflate emits at least 2 bits per 258-byte match, so no stream inflates by more than 1032:1.
// An entry claiming more is lying, and believing it would allocate whatever it asks for.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// Entries carry the earliest time a zip can hold, 1980-01-01 00:00, in MS-DOS form, rather than
// the clock's, so equal arrays give equal archives on every machine (a time_t would be turned
// into local time by libzip, and so depend on the time zone).
constexpr std::uint16_t kEntryDosTime = 0;
constexpr std::uint16_t kEntryDosDate = (0 << 9) | (1 << 5) | 1;  // years since 1980, month, day

// An empty zip is its end-of-central-directory record alone. libzip deletes an archive left with
// no entries instead of writing one, so the writer writes these bytes itself.
constexpr std::array<std::byte, 22> kEmptyZip{std::byte{'P'}, std::byte{'K'}, std::byte{5}, std::byte{6}};

std::string error_text(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

std::string quote_name(std::string_view name) {
  return fmt::format("'{}'", npy::detail::printable(name, 80));
}

// One entry's decompressed bytes, read front to back.
class EntrySource final : public npy::detail::Source {
 public:
  EntrySource(zip_file_t* file, const std::string& what) : file_(file), what_(what) {}
  ~EntrySource() { zip_fclose(file_); }
  EntrySource(const EntrySource&) = delete;
  EntrySource& operator=(const EntrySource&) = delete;

  std::size_t read(std::span<std::byte> dst) override {
    std::size_t done = 0;
    while (done < dst.size()) {
      const zip_int64_t got = zip_fread(file_, dst.data() + done, dst.size() - done);
      if (got < 0) throw Error(fmt::format("{}: corrupt entry: {}", what_, zip_file_strerror(file_)));
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  zip_file_t* file_;
  const std::string& what_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
struct Reader::Impl {
  // Creates the libzip source with `create` and opens the archive on it, turning a failure into
  // a message that names the archive.
  template <class Create>
  void open_with(Create&& create) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* source = create(&error);
    if (source == nullptr) {
      const std::string why = zip_error_strerror(&error);
      zip_error_fini(&error);
      throw Error(fmt::format("{}: cannot open: {}", what, why));
    }
    zip_error_fini(&error);
    open(source);
  }

  struct Entry {
    std::string name;  // without ".npy"
    zip_uint64_t index;
  };

  std::string what;
  std::vector<std::byte> memory;  // the archive, when it was given in memory
  std::uint64_t archive_bytes = 0;
  zip_t* archive = nullptr;
  std::vector<Entry> entries;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (archive != nullptr) zip_discard(archive);
  }

  // Opens `source` (taking it over) and lists the arrays.
  void open(zip_source_t* source) {
    if (archive_bytes == 0) {
      zip_source_free(source);
      throw Error(fmt::format("{}: empty file, not an .npz archive", what));
    }
    zip_error_t error;
    zip_error_init(&error);
    // CHECKCONS compares every local header with the central directory, so an entry cannot say
    // one size in one place and another elsewhere.
    archive = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (archive == nullptr) {
      const int code = zip_error_code_zip(&error);
      const std::string why = code == ZIP_ER_NOZIP    ? std::string("not a zip archive")
                              : code == ZIP_ER_EXISTS ? std::string("two entries have the same name")
                                                      : std::string(zip_error_strerror(&error));
      zip_error_fini(&error);
      zip_source_free(source);
      throw Error(fmt::format("{}: not a valid .npz archive ({})", what, why));
    }
    zip_error_fini(&error);

    const zip_int64_t count = zip_get_num_entries(archive, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* raw = zip_get_name(archive, static_cast<zip_uint64_t>(i), 0);
      if (raw == nullptr) {
        throw Error(fmt::format("{}: cannot read the name of entry {}: {}", what, i, zip_strerror(archive)));
      }
      const std::string_view name = raw;
      if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) continue;
      entries.push_back(
          {std::string(name.substr(0, name.size() - kSuffix.size())), static_cast<zip_uint64_t>(i)});
    }
    // numpy would silently take one of two same-named entries; which one is anyone's guess.
    std::vector<std::string_view> sorted;
    for (const auto& e : entries) sorted.push_back(e.name);
    std::sort(sorted.begin(), sorted.end());
    if (const auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
      throw Error(fmt::format("{}: holds two entries named {}; refusing an ambiguous archive", what,
                              quote_name(std::string(*dup) + ".npy")));
    }
  }

  const Entry& find(std::string_view name) const {
    for (const auto& e : entries) {
      if (e.name == name) return e;
    }
    std::string present;
    constexpr std::size_t kListed = 20;
    for (std::size_t i = 0; i < entries.size() && i < kListed; ++i) {
      present += fmt::format("{}{}", i == 0 ? "" : ", ", quote_name(entries[i].name));
    }
    if (entries.size() > kListed) present += fmt::format(" and {} more", entries.size() - kListed);
    if (entries.empty()) {
      throw Error(fmt::format("{}: no array named {}; the archive holds no arrays", what, quote_name(name)));
    }
    throw Error(fmt::format("{}: no array named {}; it holds {}", what, quote_name(name), present));
  }

  // Opens an entry after checking its sizes against the archive, and reads its header.
  template <class Fn>
  auto with_entry(std::string_view name, Fn&& fn) const {
    const Entry& entry = find(name);
    const std::string entry_what = fmt::format("{}, array {}", what, quote_name(entry.name));
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive, entry.index, 0, &st) != 0) {
      throw Error(fmt::format("{}: corrupt entry: {}", entry_what, zip_strerror(archive)));
    }
    constexpr zip_uint64_t kNeeded = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & kNeeded) != kNeeded) {
      throw Error(fmt::format("{}: corrupt entry: its sizes are unknown", entry_what));
    }
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && st.encryption_method != ZIP_EM_NONE) {
      throw Error(fmt::format("{}: the entry is encrypted, which is not supported", entry_what));
    }
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
      throw Error(
          fmt::format("{}: the entry uses zip compression method {}; only stored and deflate "
                      "entries (numpy.savez, numpy.savez_compressed) are read",
                      entry_what, st.comp_method));
    }
    if (st.comp_size > archive_bytes) {
      throw Error(fmt::format("{}: corrupt entry: it claims {} compressed bytes in a {}-byte archive",
                              entry_what, st.comp_size, archive_bytes));
    }
    if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size) {
      throw Error(fmt::format("{}: corrupt entry: stored uncompressed, it claims {} bytes but occupies {}",
                              entry_what, st.size, st.comp_size));
    }
    if (st.comp_method == ZIP_CM_DEFLATE && st.size / kMaxDeflateRatio > st.comp_size) {
      throw Error(fmt::format("{}: corrupt entry: it claims to inflate {} bytes to {}, more than deflate can",
                              entry_what, st.comp_size, st.size));
    }
    zip_file_t* file = zip_fopen_index(archive, entry.index, 0);
    if (file == nullptr) {
      throw Error(fmt::format("{}: cannot open the entry: {}", entry_what, zip_strerror(archive)));
    }
    EntrySource source(file, entry_what);
    const npy::detail::Header header = npy::detail::read_header(source, st.size, entry_what);
    return fn(source, header, entry_what);
  }
};

Reader::Reader(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->what = path.string();
  // Opened here first so a missing or special file gets the same message as everywhere else.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", impl_->what, std::strerror(errno)));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!stat_ok) throw Error(fmt::format("{}: cannot stat: {}", impl_->what, std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not a regular file", impl_->what));
  impl_->archive_bytes = static_cast<std::uint64_t>(st.st_size);

  impl_->open_with([&](zip_error_t* error) { return zip_source_file_create(path.c_str(), 0, 0, error); });
}

Reader::Reader(std::vector<std::byte> bytes, std::string what) : impl_(std::make_unique<Impl>()) {
  impl_->what = std::move(what);
  impl_->memory = std::move(bytes);
  impl_->archive_bytes = impl_->memory.size();
  impl_->open_with([&](zip_error_t* error) {
    return zip_source_buffer_create(impl_->memory.data(), impl_->memory.size(), 0, error);
  });
}

Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;

std::vector<std::string> Reader::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->entries.size());
  for (const auto& e : impl_->entries) out.push_back(e.name);
  return out;
}

bool Reader::contains(std::string_view name) const {
  return std::any_of(impl_->entries.begin(), impl_->entries.end(),
                     [&](const Impl::Entry& e) { return e.name == name; });
}

npy::Info Reader::info(std::string_view name) const {
  return impl_->with_entry(
      name, [](npy::detail::Source&, const npy::detail::Header& h, const std::string&) { return h.info; });
}

Tensor Reader::tensor(std::string_view name, Tensor reuse) const {
  return impl_->with_entry(
      name, [&reuse](npy::detail::Source& src, const npy::detail::Header& h, const std::string& what) {
        if (h.info.is_text) {
          throw Error(fmt::format("{}: holds text, not a numeric array; read it with text()", what));
        }
        return npy::detail::read_tensor(src, h, what, std::move(reuse));
      });
}

std::string Reader::text(std::string_view name) const {
  return impl_->with_entry(
      name, [](npy::detail::Source& src, const npy::detail::Header& h, const std::string& what) {
        if (!h.info.is_text) {
          throw Error(fmt::format("{}: holds a {} array of shape {}, not text", what,
                                  dtype_name(h.info.dtype), shape_str(h.info.shape)));
        }
        return npy::detail::read_text(src, h, what);
      });
}

// ---------------------------------------------------------------------------------------------
struct Writer::Impl {
  struct Entry {
    std::string name;  // with ".npy"
    std::vector<std::byte> bytes;
  };

  std::filesystem::path target;
  std::optional<zp::detail::AtomicFile> file;
  std::vector<Entry> entries;
  bool committed = false;

  void check_open() const {
    if (committed) throw Error(fmt::format("{}: the archive was already committed", target.string()));
  }

  void add(std::string_view name, std::vector<std::byte> bytes) {
    if (name.empty()) throw Error(fmt::format("{}: an array name must not be empty", target.string()));
    if (name.find('\0') != std::string_view::npos || !npy::detail::is_valid_utf8(name)) {
      throw Error(fmt::format("{}: array name {} is not NUL-free UTF-8", target.string(), quote_name(name)));
    }
    std::string entry_name = std::string(name) + std::string(kSuffix);
    for (const auto& e : entries) {
      if (e.name == entry_name) {
        throw Error(fmt::format("{}: two arrays named {}", target.string(), quote_name(name)));
      }
    }
    entries.push_back({std::move(entry_name), std::move(bytes)});
  }

  void write_zip() {
    const std::string path = file->temp_path().string();
    int code = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (archive == nullptr) {
      throw Error(fmt::format("{}: cannot write: {}", target.string(), error_text(code)));
    }
    const auto fail = [&](std::string_view doing) {
      const std::string why = zip_strerror(archive);
      zip_discard(archive);
      throw Error(fmt::format("{}: cannot write: {}: {}", target.string(), doing, why));
    };
    for (const auto& e : entries) {
      zip_source_t* source = zip_source_buffer(archive, e.bytes.data(), e.bytes.size(), 0);
      if (source == nullptr) fail(e.name);
      const zip_int64_t index = zip_file_add(archive, e.name.c_str(), source, ZIP_FL_ENC_UTF_8);
      if (index < 0) {
        zip_source_free(source);
        fail(e.name);
      }
      const auto i = static_cast<zip_uint64_t>(index);
      if (zip_set_file_compression(archive, i, ZIP_CM_STORE, 0) != 0 ||
          zip_file_set_dostime(archive, i, kEntryDosTime, kEntryDosDate, 0) != 0) {
        fail(e.name);
      }
    }
    if (zip_close(archive) != 0) fail("closing the archive");
  }
};

template <class Serialize>
void Writer::add_entry(std::string_view name, Serialize&& serialize) {
  impl_->check_open();
  std::vector<std::byte> bytes;
  try {
    bytes = serialize();
  } catch (const Error& e) {
    throw Error(fmt::format("{}, array {}: {}", impl_->target.string(), quote_name(name), e.what()));
  }
  impl_->add(name, std::move(bytes));
}

Writer::Writer(std::filesystem::path target) : impl_(std::make_unique<Impl>()) {
  impl_->target = std::move(target);
  impl_->file.emplace(impl_->target);
}

Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

void Writer::add(std::string_view name, const TensorView& tensor) {
  add_entry(name, [&] { return npy::serialize(tensor); });
}

void Writer::add_text(std::string_view name, std::string_view utf8) {
  add_entry(name, [&] { return npy::serialize_text(utf8); });
}

void Writer::commit() {
  impl_->check_open();
  if (impl_->entries.empty()) {
    zp::detail::write_file_atomically(impl_->target, kEmptyZip);
  } else {
    impl_->write_zip();
    impl_->file->commit();
  }
  impl_->file.reset();  // removes the unused temporary file of the empty case
  impl_->entries.clear();
  impl_->committed = true;
}

}  // namespace zp::npz
