#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald {

// A master key file holds the base64 of the 32-byte key and a newline, with mode 0600.

// Reads the key in `path`. Returns nullopt with a one-line reason in *error if the file is
// missing (then *missing is true), is not a regular file, may be read or written by group or
// others, or does not hold base64 of 32 bytes.
std::optional<std::string> read_key_file(const std::string& path, bool* missing,
                                         std::string* error);

// Writes `key` to `path`, which must not exist, durably and all at once: a temporary file with
// mode 0600 is written and fsynced, then linked to `path`, then the directory is fsynced.
// False with a one-line reason in *error (also when `path` exists).
bool create_key_file(const std::string& path, std::string_view key, std::string* error);

// Renames `from` over `to` and fsyncs the directory. False with a reason in *error.
bool replace_key_file(const std::string& from, const std::string& to, std::string* error);

// Removes `path` (no error if it is already gone). False with a reason in *error.
bool remove_key_file(const std::string& path, std::string* error);

}  // namespace herald
