/* gyre's version: what `gyre --version` prints and /metrics' gyre_build_info reports. */
#ifndef GYRE_VERSION_H
#define GYRE_VERSION_H

#define GYRE_VERSION "0.1.0"

#endif
