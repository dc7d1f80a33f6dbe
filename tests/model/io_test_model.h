// A stand-in for LlavaModel in checkpoint and LoRA tests: no forward pass, only a module tree whose
// parameter names follow the canonical scheme of model_config.h, with LoraLinear for every linear.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "perpo/model/lora_linear.h"

namespace perpo::test {

struct MiniLlavaSpec {
  int vision_layers = 2;
  int vision_hidden = 8;
  bool post_layernorm = true;
  int text_layers = 2;
  int hidden = 16;
  int intermediate = 24;
  int vocab = 32;
  bool tied = false;  // no lm_head: it shares embed_tokens
};

inline std::shared_ptr<torch::nn::Module> make_node() {
  return std::make_shared<torch::nn::Module>();
}

/// vision_tower.vision_model.{embeddings, pre_layrnorm, encoder.layers.N, post_layernorm},
/// multi_modal_projector.linear_{1,2}, language_model.{embed_tokens, layers.N, norm}, lm_head.
inline std::shared_ptr<torch::nn::Module> make_mini_llava(const MiniLlavaSpec& spec = {}) {
  auto root = make_node();
  int v = spec.vision_hidden, h = spec.hidden;

  auto vision_model = make_node();
  auto embeddings = make_node();
  embeddings->register_parameter("class_embedding", torch::randn({v}));
  auto patch = make_node();
  patch->register_parameter("weight", torch::randn({v, 3, 2, 2}));  // conv, no bias as in CLIP
  embeddings->register_module("patch_embedding", patch);
  vision_model->register_module("embeddings", embeddings);
  auto pre_norm = make_node();
  pre_norm->register_parameter("weight", torch::ones({v}));
  pre_norm->register_parameter("bias", torch::zeros({v}));
  vision_model->register_module("pre_layrnorm", pre_norm);
  auto encoder_layers = make_node();
  for (int i = 0; i < spec.vision_layers; ++i) {
    auto layer = make_node();
    auto attn = make_node();
    for (const char* name : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      attn->register_module(name, LoraLinear(v, v, true));
    }
    layer->register_module("self_attn", attn);
    encoder_layers->register_module(std::to_string(i), layer);
  }
  auto encoder = make_node();
  encoder->register_module("layers", encoder_layers);
  vision_model->register_module("encoder", encoder);
  if (spec.post_layernorm) {
    auto post_norm = make_node();
    post_norm->register_parameter("weight", torch::ones({v}));
    post_norm->register_parameter("bias", torch::zeros({v}));
    vision_model->register_module("post_layernorm", post_norm);
  }
  auto vision_tower = make_node();
  vision_tower->register_module("vision_model", vision_model);
  root->register_module("vision_tower", vision_tower);

  auto projector = make_node();
  projector->register_module("linear_1", LoraLinear(v, h, true));
  projector->register_module("linear_2", LoraLinear(h, h, true));
  root->register_module("multi_modal_projector", projector);

  auto language_model = make_node();
  auto embed = make_node();
  embed->register_parameter("weight", torch::randn({spec.vocab, h}));
  language_model->register_module("embed_tokens", embed);
  auto layers = make_node();
  for (int i = 0; i < spec.text_layers; ++i) {
    auto layer = make_node();
    auto attn = make_node();
    attn->register_module("q_proj", LoraLinear(h, h, false));
    attn->register_module("k_proj", LoraLinear(h, h / 2, false));  // GQA: half the key/value heads
    attn->register_module("v_proj", LoraLinear(h, h / 2, false));
    attn->register_module("o_proj", LoraLinear(h, h, false));
    layer->register_module("self_attn", attn);
    auto mlp = make_node();
    mlp->register_module("gate_proj", LoraLinear(h, spec.intermediate, false));
    mlp->register_module("up_proj", LoraLinear(h, spec.intermediate, false));
    mlp->register_module("down_proj", LoraLinear(spec.intermediate, h, false));
    layer->register_module("mlp", mlp);
    auto norm = make_node();
    norm->register_parameter("weight", torch::ones({h}));
    layer->register_module("input_layernorm", norm);
    layers->register_module(std::to_string(i), layer);
  }
  language_model->register_module("layers", layers);
  auto final_norm = make_node();
  final_norm->register_parameter("weight", torch::ones({h}));
  language_model->register_module("norm", final_norm);
  root->register_module("language_model", language_model);
  if (!spec.tied) root->register_module("lm_head", LoraLinear(h, spec.vocab, false));
  return root;
}

/// Fills every parameter with fresh random values (so two models differ everywhere).
inline void randomize(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& param : model.parameters()) param.normal_();
}

}  // namespace perpo::test
