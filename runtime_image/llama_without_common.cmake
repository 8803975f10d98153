# Included right after llama.cpp's project() (CMAKE_PROJECT_llama.cpp_INCLUDE in the Makefile and
# runtime_image/Dockerfile). llama-cpp-python forces LLAMA_BUILD_COMMON on in the cache; a normal
# variable shadows it, so llama.cpp's `common` library (argument parsing, chat templates, JSON schema
# for its own tools) is neither compiled nor installed. The Python bindings load only libllama and
# libggml*, and the runtime has no use for the rest: it shortens a cold build by the time that
# library takes to compile.
set(LLAMA_BUILD_COMMON OFF)
