#ifndef FLOWPOLICY_CZEROMQ_SHIM_H
#define FLOWPOLICY_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
