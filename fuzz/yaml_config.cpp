// Fuzz target: the YAML config loader (config module): YAML text, `a.b.c=value` overrides,
// validation and the dump of the resolved config.
//
// Input: one control byte, then text. Control bit 0 clear: the text is a config file (merge_yaml);
// set: its lines are overrides (apply_override, one per line). Then validate().
//
// Checks: loading returns or throws an input error naming the problem; a config that loads and
// validates dumps to YAML that loads back into an equal config (dump_config's promise), and
// dumping that gives the same text again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "perpo/config/config.h"
#include "perpo/config/config_io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace perpo;
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  Config config;
  const bool loaded = fuzz::accepts([&] {
    if (control & 1) {
      std::size_t start = 0;
      while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) apply_override(config, text.substr(start, end - start));
        start = end + 1;
      }
    } else {
      merge_yaml(config, text, "fuzz.yaml");
    }
    validate(config);
  });
  if (!loaded) return 0;

  const std::string dumped = dump_config(config);
  Config again;
  PERPO_FUZZ_CHECK(fuzz::accepts([&] {
                     merge_yaml(again, dumped, "dumped.yaml");
                     validate(again);
                   }),
                   "the dump of a valid config does not load:\n" + dumped);
  PERPO_FUZZ_CHECK(configs_equal(config, again), "the dump loads into another config:\n" + dumped);
  PERPO_FUZZ_CHECK(dump_config(again) == dumped, "dumping twice differs:\n" + dumped);
  return 0;
}
