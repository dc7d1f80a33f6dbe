// Periodic evaluation during training (train.eval_every): the TrainerHooks::evaluate of
// `perpo train`, the eval module's greedy decoding and per-task metrics on data.eval.
//
//   perpo::TrainerHooks hooks;
//   hooks.evaluate = perpo::training_evaluator(config);  // reads data.eval now
//   // every train.eval_every steps metrics.jsonl gets
//   // {"step": 20, "eval/grounding/acc@0.5": 0.4, "eval/grounding/mean_iou": 0.31, ...}
//
// The records are read once, when the evaluator is made (bad input is reported before training
// starts); eval.limit > 0 evaluates the first K of them (eval.max_new_tokens, eval.batch_size,
// eval.iou_threshold as in `perpo eval`). Greedy decoding draws no random numbers; the trainer
// also restores its RNG states and train mode around the call.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "perpo/config/config.h"
#include "perpo/model/load.h"

namespace perpo {

using TrainingEvaluator =
    std::function<std::map<std::string, double>(LoadedModel& policy, std::int64_t step)>;

/// Reads config.data.eval (perpo::Error, input, naming the key when it is empty, the file when
/// it is unreadable or holds no record) and returns the evaluator: "<task>/<metric>" -> value for
/// every numeric metric of evaluate() (count included), and the records / evaluated / skipped
/// counts.
TrainingEvaluator training_evaluator(const Config& config);

}  // namespace perpo
