// Typed access to the fields of one JSON record, with errors that name the record's file and line
// ("lists.jsonl:7: field \"rewards\" must be an array of numbers, got a string"). Private to data/.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "perpo/data/records.h"

namespace perpo::data_detail {

/// "a string", "an array", "null", ... for messages.
std::string describe_type(const nlohmann::json& value);

/// The field `key` of `object`, or nullptr when it is absent (or null) and not `required`.
/// Throws perpo::Error (input) when a required field is missing.
const nlohmann::json* field(const nlohmann::json& object, std::string_view key,
                            const RecordSource& source, bool required);

/// A string field; `fallback` when optional and absent. With `allow_number`, 17 reads as "17", 2.5
/// as "2.5".
std::string string_field(const nlohmann::json& object, std::string_view key,
                         const RecordSource& source, bool required, std::string fallback = "",
                         bool allow_number = false);

/// An array of strings; empty when optional and absent.
std::vector<std::string> strings_field(const nlohmann::json& object, std::string_view key,
                                       const RecordSource& source, bool required);

/// An array of finite numbers; empty when optional and absent.
std::vector<double> numbers_field(const nlohmann::json& object, std::string_view key,
                                  const RecordSource& source, bool required);

/// An array of arrays of finite numbers (sample_token_logps); empty when optional and absent.
std::vector<std::vector<double>> number_rows_field(const nlohmann::json& object,
                                                   std::string_view key, const RecordSource& source,
                                                   bool required);

}  // namespace perpo::data_detail
