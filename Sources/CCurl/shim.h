#ifndef CALGATE_CCURL_SHIM_H
#define CALGATE_CCURL_SHIM_H
#include <curl/curl.h>
#endif
