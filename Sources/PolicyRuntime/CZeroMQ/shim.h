#ifndef FLOWPOLICY_CZEROMQ_SHIM_H
#define FLOWPOLICY_CZEROMQ_SHIM_H
#include <zmq.h>

/* ZMQ_ZAP_ENFORCE_DOMAIN is part of libzmq's draft API, so zmq.h declares it only with ZMQ_BUILD_DRAFT_API. Debian's
   libzmq5 4.3.4 is built with the draft API and honours it; a library built without it refuses the option with
   EINVAL, which SocketSecurity tolerates (see SocketSecurity.handlerAbsenceRefusesClients). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#endif
