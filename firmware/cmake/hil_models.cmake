# SPDX-License-Identifier: Apache-2.0
#
# The model registry, generated at CMake time from models/*/manifest.json (never kept by hand):
#
#   <out>/hil_models.h    HIL_MODEL_COUNT, HIL_STREAM_RING_FLOATS, HIL_MODEL_NAMES
#   <out>/hil_models.cc   per model: the embedded .tflite (Zephyr's generate_inc_file_for_target)
#                         and its SHA-256, a static 16-byte-aligned arena of the manifest's
#                         arena_bytes, a MicroMutableOpResolver<N> with exactly the manifest's
#                         ops, and the tensor specs and streaming section the dispatcher reports
#
# hil_generate_models(<target> MODELS_DIR <dir> OUT_DIR <dir> [SELECTED <names>] [EXTRA_ARENA <bytes>]
#                     [PER_CHANNEL_FC] [INPUTS_VAR <var>])
#   SELECTED: model names to embed (empty: every model folder with a manifest.json)
#   INPUTS_VAR: set <var> to the manifests and .tflite files embedded (inputs of the build id)
#   PER_CHANNEL_FC: register FULLY_CONNECTED as hil::Register_FULLY_CONNECTED_PER_CHANNEL()
#                   (src/core/per_channel_fully_connected.h) instead of TFLM's stock kernel

cmake_minimum_required(VERSION 3.20)

# TFLM's MicroMutableOpResolver method for a TFLite builtin op name (manifest "ops").
function(_hil_op_method op out)
  set(exceptions
    "UNIDIRECTIONAL_SEQUENCE_LSTM=UnidirectionalSequenceLSTM"
    "BATCH_MATMUL=BatchMatMul"
    "L2_NORMALIZATION=L2Normalization"
    "L2_POOL_2D=L2Pool2D"
    "LOG_SOFTMAX=LogSoftmax"
  )
  foreach(entry IN LISTS exceptions)
    string(REPLACE "=" ";" pair "${entry}")
    list(GET pair 0 name)
    if(op STREQUAL name)
      list(GET pair 1 method)
      set(${out} "Add${method}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  # CONV_2D -> Conv2D, FULLY_CONNECTED -> FullyConnected, SPACE_TO_BATCH_ND -> SpaceToBatchNd
  string(REPLACE "_" ";" words "${op}")
  set(method "")
  foreach(word IN LISTS words)
    if(word MATCHES "^[0-9]+D$")
      string(APPEND method "${word}")
    else()
      string(SUBSTRING "${word}" 0 1 first)
      string(SUBSTRING "${word}" 1 -1 rest)
      string(TOLOWER "${rest}" rest)
      string(APPEND method "${first}${rest}")
    endif()
  endforeach()
  set(${out} "Add${method}" PARENT_SCOPE)
endfunction()

# TfLiteType code of a manifest dtype.
function(_hil_dtype_code dtype out)
  set(codes float32=1 int32=2 uint8=3 int64=4 int16=7 int8=9)
  foreach(entry IN LISTS codes)
    string(REPLACE "=" ";" pair "${entry}")
    list(GET pair 0 name)
    if(dtype STREQUAL name)
      list(GET pair 1 code)
      set(${out} ${code} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  message(FATAL_ERROR "hil_models: unsupported tensor dtype '${dtype}'")
endfunction()

# C initializer of a hil_tensor_spec from manifest["input"|"output"]; sets <out> and <out>_VALUES
# (elements, for window sizes) and <out>_DIMS (the shape list).
function(_hil_tensor_spec json key manifest out)
  string(JSON dtype GET "${json}" ${key} dtype)
  string(JSON ndims LENGTH "${json}" ${key} shape)
  string(JSON scale GET "${json}" ${key} scale)
  string(JSON zero_point GET "${json}" ${key} zero_point)
  if(ndims GREATER 6)
    message(FATAL_ERROR "hil_models: ${manifest}: ${key} has ${ndims} dims (at most 6)")
  endif()
  _hil_dtype_code(${dtype} code)
  set(dims "")
  set(values 1)
  math(EXPR last "${ndims} - 1")
  foreach(i RANGE ${last})
    string(JSON d GET "${json}" ${key} shape ${i})
    list(APPEND dims ${d})
    math(EXPR values "${values} * ${d}")
  endforeach()
  list(JOIN dims ", " dims_c)
  set(${out} "{${code}, ${ndims}, {${dims_c}}, static_cast<float>(${scale}), ${zero_point}}" PARENT_SCOPE)
  set(${out}_VALUES ${values} PARENT_SCOPE)
  set(${out}_DIMS "${dims}" PARENT_SCOPE)
endfunction()

function(hil_generate_models target)
  cmake_parse_arguments(ARG "PER_CHANNEL_FC" "MODELS_DIR;OUT_DIR;EXTRA_ARENA;INPUTS_VAR" "SELECTED"
    ${ARGN})
  if(NOT ARG_EXTRA_ARENA)
    set(ARG_EXTRA_ARENA 0)
  endif()
  # A new model folder re-runs CMake on the next build, so it is picked up without --pristine.
  file(GLOB manifests CONFIGURE_DEPENDS "${ARG_MODELS_DIR}/*/manifest.json")
  list(SORT manifests)

  set(models_cc "")
  set(table "")
  set(names "")
  set(inputs "")
  set(ring_floats 1)
  set(index 0)
  foreach(manifest IN LISTS manifests)
    file(READ "${manifest}" json)
    string(JSON name GET "${json}" name)
    if(ARG_SELECTED AND NOT name IN_LIST ARG_SELECTED)
      continue()
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${manifest}")
    get_filename_component(model_dir "${manifest}" DIRECTORY)
    string(JSON tflite GET "${json}" tflite)
    string(JSON arena GET "${json}" arena_bytes)
    if(NOT EXISTS "${model_dir}/${tflite}")
      message(FATAL_ERROR "hil_models: ${manifest} names ${tflite}, which is missing")
    endif()
    list(APPEND inputs "${manifest}" "${model_dir}/${tflite}")

    # MODEL_INFO reports the hash of the bytes embedded, so a changed .tflite re-runs CMake.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${model_dir}/${tflite}")
    file(SHA256 "${model_dir}/${tflite}" sha256)
    string(JSON manifest_sha256 ERROR_VARIABLE no_sha256 GET "${json}" sha256)
    if(NOT no_sha256 AND NOT manifest_sha256 STREQUAL sha256)
      message(WARNING "hil_models: ${model_dir}/${tflite} does not match the sha256 in ${manifest}: "
        "retrain or re-finalize the model (`hil models verify`)")
    endif()

    # The flatbuffer, as a byte list the generated source #includes.
    set(inc "${ARG_OUT_DIR}/models/${name}.tflite.inc")
    generate_inc_file_for_target(${target} "${model_dir}/${tflite}" "${inc}")

    # Exactly the manifest's ops.
    string(JSON op_count LENGTH "${json}" ops)
    set(adds "")
    math(EXPR last "${op_count} - 1")
    foreach(i RANGE ${last})
      string(JSON op GET "${json}" ops ${i})
      _hil_op_method(${op} method)
      set(registration "")
      if(op STREQUAL "FULLY_CONNECTED" AND ARG_PER_CHANNEL_FC)
        set(registration "Register_FULLY_CONNECTED_PER_CHANNEL()")
      endif()
      string(APPEND adds "  TF_LITE_ENSURE_STATUS(resolver.${method}(${registration}));  // ${op}\n")
    endforeach()

    _hil_tensor_spec("${json}" input "${manifest}" input_spec)
    _hil_tensor_spec("${json}" output "${manifest}" output_spec)

    # Streaming: rate, and whether our accelerometer can supply its channels and unit.
    set(stream "{0.0f, HIL_SENSOR_NONE, 1.0f}")
    string(JSON streaming ERROR_VARIABLE no_streaming GET "${json}" streaming)
    if(NOT no_streaming)
      string(JSON rate GET "${streaming}" sample_rate_hz)
      string(JSON unit GET "${streaming}" unit)
      string(JSON channel_count LENGTH "${streaming}" channels)
      set(channels "")
      if(channel_count GREATER 0)
        math(EXPR last "${channel_count} - 1")
        foreach(i RANGE ${last})
          string(JSON channel GET "${streaming}" channels ${i})
          list(APPEND channels ${channel})
        endforeach()
      endif()
      set(sensor HIL_SENSOR_NONE)
      if(channels STREQUAL "accel_x;accel_y;accel_z")
        set(sensor HIL_SENSOR_ACCEL)
      endif()
      if(unit STREQUAL "g")
        set(per_si "1.0f / 9.80665f")
      elseif(unit MATCHES "^m/s(2|\\^2|²)$")
        set(per_si "1.0f")
      else()
        set(sensor HIL_SENSOR_NONE)
        set(per_si "1.0f")
      endif()
      set(stream "{static_cast<float>(${rate}), ${sensor}, ${per_si}}")
    endif()

    # A [1,W], [1,W,C] or [1,W,C,1] input is a window: the stream ring must hold it.
    list(GET input_spec_DIMS 0 batch)
    list(LENGTH input_spec_DIMS input_ndims)
    if(batch EQUAL 1 AND input_ndims GREATER_EQUAL 2 AND input_ndims LESS_EQUAL 4
       AND input_spec_VALUES GREATER ring_floats)
      set(ring_floats ${input_spec_VALUES})
    endif()

    # Arena: the manifest's measurement (+ EXTRA_ARENA), rounded up to 16 bytes.
    math(EXPR arena_total "((${arena} + ${ARG_EXTRA_ARENA} + 15) / 16) * 16")
    set(m "Model${index}")
    string(APPEND models_cc "
// ${name}: ${manifest}
alignas(16) const unsigned char k${m}Flatbuffer[] = {
#include \"models/${name}.tflite.inc\"
};
alignas(16) uint8_t ${m}Arena[${arena_total}];
using ${m}OpResolver = tflite::MicroMutableOpResolver<${op_count}>;
alignas(${m}OpResolver) uint8_t ${m}ResolverStorage[sizeof(${m}OpResolver)];

TfLiteStatus Register${m}Ops(${m}OpResolver& resolver) {
${adds}  return kTfLiteOk;
}

const tflite::MicroOpResolver* Make${m}Resolver() {
  auto* resolver = new (${m}ResolverStorage) ${m}OpResolver();
  return Register${m}Ops(*resolver) == kTfLiteOk ? resolver : nullptr;
}
")
    string(APPEND table "    {\"${name}\", k${m}Flatbuffer, sizeof(k${m}Flatbuffer), ${m}Arena,
     sizeof(${m}Arena), Make${m}Resolver,
     ${input_spec},
     ${output_spec},
     ${stream},
     \"${sha256}\"},
")
    list(APPEND names ${name})
    math(EXPR index "${index} + 1")
  endforeach()

  if(index EQUAL 0)
    message(FATAL_ERROR "hil_models: no model to embed: ${ARG_MODELS_DIR}/*/manifest.json "
      "gave none (selected: '${ARG_SELECTED}')")
  endif()
  foreach(name IN LISTS ARG_SELECTED)
    if(NOT name IN_LIST names)
      message(FATAL_ERROR "hil_models: CONFIG_HIL_MODELS names '${name}', which has no "
        "${ARG_MODELS_DIR}/<model>/manifest.json")
    endif()
  endforeach()

  if(ARG_INPUTS_VAR)
    set(${ARG_INPUTS_VAR} "${inputs}" PARENT_SCOPE)
  endif()

  list(JOIN names " " names_text)
  file(CONFIGURE OUTPUT "${ARG_OUT_DIR}/hil_models.h" @ONLY CONTENT
"/* Generated by firmware/cmake/hil_models.cmake from models/<name>/manifest.json: do not edit. */
#ifndef HIL_GENERATED_HIL_MODELS_H_
#define HIL_GENERATED_HIL_MODELS_H_

#define HIL_MODEL_COUNT ${index}
#define HIL_STREAM_RING_FLOATS ${ring_floats}
#define HIL_MODEL_NAMES \"${names_text}\"

#endif /* HIL_GENERATED_HIL_MODELS_H_ */
")
  file(CONFIGURE OUTPUT "${ARG_OUT_DIR}/hil_models.cc" @ONLY CONTENT
"// Generated by firmware/cmake/hil_models.cmake from models/*/manifest.json: do not edit.
#include <cstddef>
#include <cstdint>
#include <new>

#include \"hil_models.h\"
#include \"model_registry.h\"
#include \"per_channel_fully_connected.h\"
#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"

namespace hil {
namespace {
${models_cc}
}  // namespace

const ModelDescriptor kModels[] = {
${table}};
const size_t kModelCount = ${index};

}  // namespace hil
")
  target_sources(${target} PRIVATE "${ARG_OUT_DIR}/hil_models.cc")
  target_include_directories(${target} PRIVATE "${ARG_OUT_DIR}")
  message(STATUS "tinyml-hil models: ${names_text} (stream ring ${ring_floats} floats)")
endfunction()
