#ifndef CALGATE_CCURL_SHIM_H
#define CALGATE_CCURL_SHIM_H
#include <curl/curl.h>

/*
 * Swift cannot call C variadic functions or see function-like / aliasing macros, so each variadic libcurl entry
 * point gets one typed wrapper per argument kind it is used with, and macros get a function that returns them.
 */

/* Write and header callbacks share this shape (curl_write_callback without the typedef's char* vs void* mismatch). */
typedef size_t (*calgate_curl_data_callback)(char *data, size_t size, size_t count, void *context);

/* ---- curl_easy_setopt ---- */

static inline CURLcode calgate_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_share(CURL *handle, CURLoption option, CURLSH *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode calgate_curl_easy_setopt_callback(CURL *handle, CURLoption option, calgate_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/* ---- curl_easy_getinfo ---- */

static inline CURLcode calgate_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode calgate_curl_easy_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode calgate_curl_easy_getinfo_string(CURL *handle, CURLINFO info, const char **value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode calgate_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

/* ---- curl_multi_setopt / curl_share_setopt ---- */

static inline CURLMcode calgate_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}
static inline CURLSHcode calgate_curl_share_setopt_long(CURLSH *share, CURLSHoption option, long value) {
    return curl_share_setopt(share, option, value);
}

/* ---- macros and unions ---- */

/* CURLVERSION_NOW is a macro naming the struct layout these headers were compiled against. */
static inline curl_version_info_data *calgate_curl_version_info_now(void) { return curl_version_info(CURLVERSION_NOW); }
/* CURL_GLOBAL_ALL is an OR of two macros. */
static inline long calgate_curl_global_all(void) { return CURL_GLOBAL_ALL; }
/* CURL_ERROR_SIZE is the minimum size of a CURLOPT_ERRORBUFFER. */
static inline int calgate_curl_error_size(void) { return CURL_ERROR_SIZE; }
/* CURLMsg.data is a union; Swift reads the result through this. */
static inline CURLcode calgate_curl_msg_result(CURLMsg *message) { return message->data.result; }
#endif
