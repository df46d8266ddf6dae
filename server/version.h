/* The one version string of aegisd and aegisctl. */
#ifndef AEGIS_VERSION_H
#define AEGIS_VERSION_H

#define AEGIS_VERSION "0.1.0"

#endif
