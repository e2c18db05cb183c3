# Finds mbedTLS (Debian's libmbedtls-dev ships neither a CMake package nor a
# .pc file). Defines MbedTLS::mbedcrypto, MbedTLS::mbedx509, MbedTLS::mbedtls.
# Static archives are preferred: a terminal image then needs no mbedTLS .so.
find_path(MbedTLS_INCLUDE_DIR mbedtls/ssl.h)
foreach(lib mbedcrypto mbedx509 mbedtls)
	find_library(MbedTLS_${lib}_LIBRARY NAMES lib${lib}.a ${lib})
endforeach()
if(MbedTLS_INCLUDE_DIR AND EXISTS ${MbedTLS_INCLUDE_DIR}/mbedtls/build_info.h)
	set(_mbedtls_version_file ${MbedTLS_INCLUDE_DIR}/mbedtls/build_info.h)
elseif(MbedTLS_INCLUDE_DIR)
	set(_mbedtls_version_file ${MbedTLS_INCLUDE_DIR}/mbedtls/version.h)
endif()
if(_mbedtls_version_file)
	file(STRINGS ${_mbedtls_version_file} _mbedtls_version_line
		REGEX "^#define MBEDTLS_VERSION_STRING +\"[0-9.]+\"")
	string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" MbedTLS_VERSION "${_mbedtls_version_line}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(MbedTLS
	REQUIRED_VARS MbedTLS_INCLUDE_DIR MbedTLS_mbedcrypto_LIBRARY MbedTLS_mbedx509_LIBRARY
		MbedTLS_mbedtls_LIBRARY
	VERSION_VAR MbedTLS_VERSION)

if(MbedTLS_FOUND AND NOT TARGET MbedTLS::mbedcrypto)
	add_library(MbedTLS::mbedcrypto UNKNOWN IMPORTED)
	set_target_properties(MbedTLS::mbedcrypto PROPERTIES
		IMPORTED_LOCATION ${MbedTLS_mbedcrypto_LIBRARY}
		INTERFACE_INCLUDE_DIRECTORIES ${MbedTLS_INCLUDE_DIR})
	add_library(MbedTLS::mbedx509 UNKNOWN IMPORTED)
	set_target_properties(MbedTLS::mbedx509 PROPERTIES
		IMPORTED_LOCATION ${MbedTLS_mbedx509_LIBRARY}
		INTERFACE_LINK_LIBRARIES MbedTLS::mbedcrypto)
	add_library(MbedTLS::mbedtls UNKNOWN IMPORTED)
	set_target_properties(MbedTLS::mbedtls PROPERTIES
		IMPORTED_LOCATION ${MbedTLS_mbedtls_LIBRARY}
		INTERFACE_LINK_LIBRARIES MbedTLS::mbedx509)
endif()
mark_as_advanced(MbedTLS_INCLUDE_DIR MbedTLS_mbedcrypto_LIBRARY MbedTLS_mbedx509_LIBRARY
	MbedTLS_mbedtls_LIBRARY)
