"""MCM-DPO, DPO and SFT for vision-language models: the Django-free training library of AltPref.

Modules (import them directly; this package imports nothing heavy so `formats` stays torch-free):
formats (snapshot readers, `parse_question`), loss (`mcm_dpo_loss`, `MCMWeights`), negatives
(corrupted images, swapped contexts), families (one adapter per VLM family: image inputs, image
spans, attention, positions), processors (processors without torchvision), data (8-condition
token segments, `PromptStyle`), packing (prefix-tree rows and log-probs), refcache (reference
log-probs on disk), config (`MCMDPOConfig`), modeling (Auto loading, LoRA/paradigms), trainer
(`MCMDPOTrainer`, atomic checkpoints), run (`run_training`), progress (the run's progress log),
cli and doctor (`python -m modeltrain.mcmdpo train|doctor`), generate (beam-search alt-text),
alttext_task (the controlled alt-text task), demo_model (the cached SFT-trained demo base),
paper_table (SFT / DPO / MCM-DPO on the task, the paper's table in miniature),
bench, tiny, tiny_families and synthetic (test/bench models and data).
"""
