// JSON parsing for the safetensors header and index, stricter than nlohmann's default on the two
// points where the default would let a hostile file through:
//  - a key that appears twice in one object: nlohmann keeps the last one silently, so a file
//    could show this reader one tensor and another reader (which keeps the first) another;
//  - deep nesting: the DOM is fine with it, but dump() and the destructor recurse, so depth is
//    capped before a value that deep is ever built.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "formats/npy/npy_stream.hpp"
#include "zeropoint/error.hpp"

namespace zp::safetensors::detail {

/// `text` quoted for a one-line message ('name', control and non-ASCII bytes escaped, cut).
inline std::string in_quotes(std::string_view text, std::size_t max = 120) {
  return fmt::format("'{}'", npy::detail::printable(text, max));
}

/// "a number", "a list", "an object", ... for messages.
inline std::string_view kind_of(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

/// Parses `text` (the whole of it) as JSON. Containers may nest at most `max_depth` deep (1: only
/// the top-level object or array). A key seen twice in one object throws the zp::Error that
/// `duplicate_message(parent_keys, key)` describes; `parent_keys` are the keys leading from the
/// top to the object (empty for the top-level one). `prefix` ("model.safetensors: the header")
/// starts the other messages.
template <class DuplicateMessage>
nlohmann::json parse_strict_json(std::string_view text, int max_depth, std::string_view prefix,
                                 DuplicateMessage&& duplicate_message) {
  // One set of seen keys per open object; arrays get an empty placeholder so the stacks move in
  // step with nlohmann's depth.
  std::vector<std::set<std::string>> seen;
  std::vector<std::string> path;  // the key of each open container below the top
  std::string last_key;
  const auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (depth >= max_depth) {
          throw Error(fmt::format("{} nests objects and lists deeper than {} levels", prefix, max_depth));
        }
        if (depth > 0) path.push_back(last_key);  // empty inside a list
        seen.emplace_back();
        last_key.clear();
        break;
      case Event::object_end:
      case Event::array_end:
        seen.pop_back();
        if (!path.empty()) path.pop_back();
        last_key.clear();
        break;
      case Event::key: {
        std::string key = parsed.get<std::string>();
        if (!seen.back().insert(key).second) throw Error(duplicate_message(path, key));
        last_key = std::move(key);
        break;
      }
      case Event::value:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] " and may quote input.
    std::string_view why = e.what();
    if (const auto close = why.find("] "); why.starts_with("[json.exception.") && close != why.npos) {
      why.remove_prefix(close + 2);
    }
    throw Error(fmt::format("{} is not valid JSON: {}", prefix, npy::detail::printable(why, 200)));
  }
}

}  // namespace zp::safetensors::detail
