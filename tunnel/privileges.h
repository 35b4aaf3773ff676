/* Dropping root after the listeners are bound. */
#ifndef WALGUARD_PRIVILEGES_H
#define WALGUARD_PRIVILEGES_H

#include "config.h"

/*
 * Apply [interface] chroot and user: change the root folder, then switch
 * to the user's uid and primary gid with no supplementary groups. Does
 * nothing when neither is set. Returns -1 after logging what failed; the
 * daemon must then stop, since it would otherwise run with more rights
 * than the operator asked for.
 */
int privileges_drop(const struct config *config);

#endif
