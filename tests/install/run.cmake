# Script mode: install the build tree, configure and build the consumer
# project against the prefix, run its tests. Any failing step fails the test.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
	execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
	if(NOT rc EQUAL 0)
		string(REPLACE ";" " " cmd "${ARGN}")
		message(FATAL_ERROR "failed (${rc}): ${cmd}")
	endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/loyalty/loyalty.h include/loyalty/export.h lib/libloyalty.a lib/libloyalty.so
		lib/cmake/loyalty/loyaltyConfig.cmake lib/pkgconfig/loyalty.pc lib/pkgconfig/loyalty-static.pc)
	if(NOT EXISTS ${prefix}/${f})
		message(FATAL_ERROR "install is missing ${f}")
	endif()
endforeach()

set(args -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
	-DCMAKE_PREFIX_PATH=${prefix} -DLOYALTY_PROGRAM=${SOURCE_DIR}/examples/programs/cafe-rewards.json
	"-DCMAKE_C_FLAGS=${C_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
if(TOOLCHAIN)
	list(APPEND args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN})
endif()
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${CMAKE_CTEST_COMMAND} --test-dir ${WORK_DIR}/build --output-on-failure)
