// Robustness rows for `perpo train`. Bad input the table cannot hold (a row must write nothing):
// answers longer than data.max_answer_tokens train truncated and are counted, lists of other N mix
// (tests/train/trainer_test.cpp LongAnswersAreCutAndListsOfOtherSizesMix); a full disk while
// checkpointing keeps the previous checkpoint loadable (FailedCheckpointWriteKeepsThePrevious...,
// and the SIGKILL test in tests/cli).
#include "cases_model_commands.h"

namespace perpo::robustness {
namespace {

// One grounding list of `n` answers on {dir}/img.png (rewards falling, ref_logps given).
std::string one_list(int n) {
  std::string answers, rewards, ref;
  for (int i = 0; i < n; ++i) {
    const std::string sep = i ? ", " : "";
    answers += sep + "\"[0." + std::to_string(i + 1) + ", 0.2, 0.5, 0.6]\"";
    rewards += sep + std::to_string(1.0 - 0.25 * i);
    ref += sep + std::to_string(-20.0 - i);
  }
  return R"({"id": "l1", "task": "grounding", "image": "img.png", "prompt": "the red square", )"
         R"("ground_truth": "[0.10, 0.20, 0.30, 0.40]", "answers": [)" +
         answers + "], \"rewards\": [" + rewards + "], \"ref_logps\": [" + ref + "]}\n";
}

void write_lists_setup(const fs::path& dir, int n) {
  write_tiny_setup_with_image(dir);
  write_text(dir / "lists.jsonl", one_list(n));
}

// The list of one_list(3) with a sample_token_logps field (`rows` as JSON).
void write_token_logps_setup(const fs::path& dir, const std::string& rows) {
  write_tiny_setup_with_image(dir);
  std::string list = one_list(3);
  list.insert(list.rfind('}'), ", \"sample_token_logps\": " + rows);
  write_text(dir / "lists.jsonl", list);
}

// An empty safetensors file: an 8-byte little-endian header length, then the header "{}".
std::string empty_safetensors() { return std::string("\x02\0\0\0\0\0\0\0{}", 10); }

// run.dir with a checkpoint written by a run whose loss.beta was 0.5 (the row runs with 0.1).
void write_checkpoint_setup(const fs::path& dir) {
  write_lists_setup(dir, 3);
  const fs::path run = dir / "run";
  write_text(run / ".perpo-output", "This folder was written by perpo.\n");
  const fs::path step = run / "checkpoints" / "step-1";
  write_text(step / "config.yaml", "loss:\n  beta: 0.5\n");
  write_text(step / "weights.safetensors", empty_safetensors());
  write_text(step / "optimizer.safetensors", empty_safetensors());
  write_text(step / "trainer_state.json", R"({"step": 1, "data_epoch": 0, "data_cursor": 1})");
}

}  // namespace

PERPO_ROBUSTNESS_CASES(train) {
  const std::string run = "train --config {dir}/c.yaml";
  const std::string lists = " data.train={dir}/lists.jsonl";
  // Data parallel (torchrun's variables): a bad set is refused before anything is read.
  auto launched = [&](const char* name, const std::string& env, const std::string& extra, int code,
                      const char* message) {
    Case c{name, run + lists + extra, [](const fs::path& dir) { write_lists_setup(dir, 3); }, code,
           message};
    c.env = env;
    return c;
  };
  const std::string local = " MASTER_ADDR=127.0.0.1";
  CaseList launcher_rows = {
      launched("dist_rank_missing", "WORLD_SIZE=2", "", 2, "WORLD_SIZE is 2 but RANK is not set"),
      launched("dist_rank_too_big", "WORLD_SIZE=2 RANK=2 MASTER_PORT=29500" + local, "", 2,
               "RANK='2' must be an integer in [0, 1]"),
      launched("dist_world_not_a_number", "WORLD_SIZE=two RANK=0", "", 2,
               "WORLD_SIZE='two' must be an integer"),
      launched("dist_addr_missing", "WORLD_SIZE=2 RANK=1 MASTER_PORT=29500", "", 2,
               "MASTER_ADDR is not set"),
      launched("dist_port_missing", "WORLD_SIZE=2 RANK=1" + local, "", 2, "MASTER_PORT is not set"),
      launched("dist_port_out_of_range", "WORLD_SIZE=2 RANK=1 MASTER_PORT=70000" + local, "", 2,
               "MASTER_PORT='70000' must be an integer in [1, 65535]"),
      // Nobody serves the rendezvous (port 1): rank 1 gives up after distributed.timeout_s.
      launched("dist_no_rendezvous", "WORLD_SIZE=2 RANK=1 MASTER_PORT=1" + local,
               " distributed.timeout_s=2", 1,
               "no rendezvous with rank 0 at 127.0.0.1:1 within 2 s"),
  };
  CaseList rows = {
      {"unknown_loss", run + " loss.name=ppo data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "loss.name"},
      {"missing_lists", run + " data.train={dir}/none.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "none.jsonl"},
      {"no_training_data", run, [](const fs::path& dir) { write_tiny_setup(dir); }, 2,
       "data.train"},
      {"negative_lr", run + " optim.lr=-1 data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "optim.lr"},
      {"run_dir_is_user_folder", run + " data.train={dir}/records.jsonl run.dir={dir}/mine",
       [](const fs::path& dir) {
         write_tiny_setup(dir);
         write_text(dir / "mine" / "notes.txt", "mine");
       },
       2, "--force"},
      {"eval_every_without_data_eval", run + " train.eval_every=5" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "data.eval"},
      {"eval_records_missing", run + " train.eval_every=5 data.eval={dir}/none.jsonl" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "none.jsonl"},
      {"resume_without_checkpoint", run + " --resume data.train={dir}/records.jsonl",
       [](const fs::path& dir) { write_tiny_setup(dir); }, 2, "checkpoint"},
      {"resume_with_other_config", run + " --resume" + lists, write_checkpoint_setup, 2,
       "loss.beta: 0.5 in the checkpoint, 0.1 now"},
      {"list_with_one_answer", run + lists, [](const fs::path& dir) { write_lists_setup(dir, 1); },
       2, "at least 2 answers"},
      {"online_without_frozen_reference", run + " train.online_resample_every=2" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "loss.reference"},
      // Issue 21: non-finite and absurd settings ran to exit 0 with inf/NaN checkpoints.
      {"weight_decay_inf", run + " optim.weight_decay=inf" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2,
       "'optim.weight_decay' must be in [0, 10]; got inf"},
      {"lr_absurd", run + " optim.lr=1e308" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'optim.lr' must be in (0, 10]"},
      {"beta_absurd", run + " loss.beta=1e308" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'loss.beta' must be in"},
      {"lora_alpha_inf", run + " model.lora.enabled=true model.lora.alpha=inf" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'model.lora.alpha' must be in"},
      {"lora_rank_huge", run + " model.lora.enabled=true model.lora.r=1000000000" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'model.lora.r' must be in"},
      {"threads_huge", run + " run.threads=100000" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'run.threads' must be in"},
      {"image_std_tiny", run + " image.std=[1e-320,0.3,0.3]" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'image.std' must be in"},
      {"ref_logps_absurd", run + lists,
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         std::string list = one_list(3);
         list.replace(list.find("-20.000000"), 10, "1e300");
         write_text(dir / "lists.jsonl", list);
       },
       2, "lists.jsonl:1: ref_logps 0 is 1e+300"},
      {"rewards_absurd", run + lists,
       [](const fs::path& dir) {
         write_tiny_setup_with_image(dir);
         std::string list = one_list(3);
         list.replace(list.find("1.000000"), 8, "1e300");
         write_text(dir / "lists.jsonl", list);
       },
       2, "lists.jsonl:1: reward 0 is 1e+300"},
      // Issue 25: loss.name grpo.
      {"grpo_eps_low_out_of_range", run + " loss.name=grpo loss.grpo.eps_low=1.5" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2,
       "'loss.grpo.eps_low' must be in [0, 1)"},
      {"grpo_unknown_variant", run + " loss.name=grpo loss.grpo.variant=ppo" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "loss.grpo.variant"},
      {"grpo_offline_without_token_logps", run + " loss.name=grpo" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "'sample_token_logps'"},
      {"grpo_token_logps_wrong_length", run + " loss.name=grpo" + lists,
       [](const fs::path& dir) { write_token_logps_setup(dir, "[[-1.0], [-1.0], [-1.0]]"); }, 2,
       "lists.jsonl:1: sample_token_logps row 0 has 1 values but answer 0 is"},
      {"grpo_token_logps_wrong_rows", run + " loss.name=grpo" + lists,
       [](const fs::path& dir) { write_token_logps_setup(dir, "[[-1.0], [-1.0]]"); }, 2,
       "field \"sample_token_logps\" has 2 rows but \"answers\" has 3"},
      {"grpo_token_logps_positive", run + " loss.name=grpo" + lists,
       [](const fs::path& dir) { write_token_logps_setup(dir, "[[-1.0], [5.0], [-1.0]]"); }, 2,
       "sample_token_logps row 1 holds 5"},
      {"grpo_kl_without_a_reference",
       run + " loss.name=grpo loss.grpo.kl_beta=0.1 " + "train.online_resample_every=1" + lists,
       [](const fs::path& dir) { write_lists_setup(dir, 3); }, 2, "loss.grpo.kl_beta > 0"},
      // --force never reaches an input: the config file lies where train writes config.yaml.
      {"force_over_the_config_file", "train --config {dir}/run/config.yaml --force" + lists,
       [](const fs::path& dir) {
         write_lists_setup(dir, 3);
         write_text(dir / "run" / "config.yaml",
                    "# my comments\n" + tiny_model_yaml(dir, "loss:\n  name: perpo\n"));
       },
       2, "is the input"},
      {"checkpoints_is_a_file", run + lists,
       [](const fs::path& dir) {
         write_lists_setup(dir, 3);
         write_text(dir / "run" / ".perpo-output",
                    "This folder was written by perpo.\nkind: run\n");
         write_text(dir / "run" / "checkpoints", "not a folder");
       },
       2, "checkpoints exists and is not a folder"},
      {"run_dir_of_an_export", run + lists,
       [](const fs::path& dir) {
         write_lists_setup(dir, 3);
         write_text(dir / "run" / ".perpo-output", "written by perpo\nkind: export\n");
         write_text(dir / "run" / "config.json", "{}");
       },
       2, "holds an export (perpo export), not a run folder"},
  };
  rows.insert(rows.end(), launcher_rows.begin(), launcher_rows.end());
  return rows;
}

}  // namespace perpo::robustness
