/* SPDX-License-Identifier: MIT */
/* proto_stubs.h — what fuzz_proto.c reads back from its stand-ins (proto_stubs.c). */
#ifndef BITMIX_FUZZ_PROTO_STUBS_H
#define BITMIX_FUZZ_PROTO_STUBS_H

extern unsigned long proto_stub_jobs; /* INFER jobs admitted and checked */

#endif
