#!/usr/bin/env bash
# The tests cosmic-ray runs against each mutant of the portable model kernels (see
# benchmarks/mutation.py). Fastest, most sensitive oracles first; -x stops at the first failure.
#
# numba caches compiled functions per source file and does not notice when a function it inlined
# from *another* file changed, so every mutant starts from a cache with the portable modules'
# entries removed: each run compiles the (mutated) kernels it uses, nothing stale survives.
set -u
cache="${ZIPLAB_MUTATION_CACHE:?set by benchmarks/mutation.py}"
find "$cache" -path '*portable*' -type f -delete 2>/dev/null
export NUMBA_CACHE_DIR="$cache"
# compiled kernels do not check indices; here they do, so a mutant that reads or writes past an
# array fails instead of reading whatever lies there
export NUMBA_BOUNDSCHECK=1
golden="tests/test_portable.py::test_golden_file_decodes_to_its_recorded_original"
exec python -m pytest -x -q -p no:cacheprovider -k "not ctx" \
  tests/test_portable.py::test_deterministic_arithmetic_gives_its_recorded_bits \
  tests/test_portable.py::test_hand_built_transcendentals_are_accurate \
  tests/test_portable.py::test_quantisation_edges \
  tests/test_portable.py::test_softmax_does_not_depend_on_where_the_logits_sit \
  tests/test_portable.py::test_self_test_refuses_a_limit_past_the_bound_even_where_fp32_gets_it_right \
  tests/test_portable.py::test_transformer_attention_limits_keep_every_product_below_2_24 \
  tests/test_portable.py::test_gelu_is_exactly_zero_at_and_below_the_table_and_angles_reduce_into_range \
  tests/test_portable.py::test_attention_weights_do_not_depend_on_where_the_scores_sit \
  tests/test_portable.py::test_attention_output_keeps_the_heads_in_order \
  tests/test_portable.py::test_gelu_just_inside_the_table_is_interpolated \
  tests/test_portable.py::test_gelu_in_the_tables_last_cell_reads_its_last_entry \
  tests/test_portable.py::test_lookup_tables_track_the_functions \
  "$golden[v2-text-nn-t1.zl]" "$golden[v2-text-nn-shipped.zl]" "$golden[v2-mixed-nn-shipped.zl]" \
  "$golden[v2-text-mix-t1.zl]" \
  tests/test_models.py::test_portable_step_matches_float_forward_and_the_tolerance_has_teeth \
  tests/test_models.py::test_swapped_lanes_would_fail_the_step_oracle \
  tests/test_models.py::test_a_lane_does_not_depend_on_its_batch \
  tests/test_models.py::test_probs_positive_normalised_float32_contiguous \
  tests/test_models.py::test_batch_shape_is_fixed_at_start \
  tests/test_portable.py::test_probabilities_do_not_depend_on_the_thread_count \
  tests/test_portable.py::test_exactness_self_test_refuses_an_inexact_gemm
