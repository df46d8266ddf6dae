/* proto_vectors: the protocol's test vector (proto_vectors.h, docs/protocol.md section 6). */
#include "proto_vectors.h"

#include "proto_fields.h"

const struct proto_vec_event proto_vec_events[PROTO_VEC_EVENTS] = {
    {PROTO_STAGE_BOOTLOADER, "aegis-bl", "1.0.0", 1,
     "671110ef05d05c0f9fe1e24b8618426e2a4c76e00cef45f96901a26f03e21dbd",
     "010861656769732d626c05312e302e3000000001"
     "671110ef05d05c0f9fe1e24b8618426e2a4c76e00cef45f96901a26f03e21dbd",
     "0ccc292e0944820bc659690a537597fdb891ca85bc2984a9a7efffd1cb4cbf7d",
     "d399a9536d046779e34728f3a17c7b95d923c9230dfa2445a2a5f47f93a0b27f"},
    {PROTO_STAGE_OS, "aegis-os", "2.3.1", 7,
     "235a4df5aafadcb8a03079d8e9c78ee94be0e460d6a445750092b06a28c33ef3",
     "020861656769732d6f7305322e332e3100000007"
     "235a4df5aafadcb8a03079d8e9c78ee94be0e460d6a445750092b06a28c33ef3",
     "803a4908ab29b10d3b37493d4698da64b1af624894881153a499d8c10cfc6f50",
     "24cbd4d78c6ea6e3ed4db4f8512c08d61d11c83ee949483c26b8a295cfffb2c2"},
    {PROTO_STAGE_APP, "acme-thermo", "0.9.0-rc1", 42,
     "28c2eb485677225e582e05aab123655160f102aa26b2f11d458fb865709c5270",
     "030b61636d652d746865726d6f09302e392e302d7263310000002a"
     "28c2eb485677225e582e05aab123655160f102aa26b2f11d458fb865709c5270",
     "dbf587d2ef7968f35b688cae39d03bbb76d5915f99bb27e32e64db9d638403f7",
     "701dcad8793bc4bb4e80a39c8373ad94eddcf3e4ace2cd59610d6afbae8845ae"},
};

const char proto_vec_identity_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/aVvErp8dRp9DIMl\n"
    "+Ch/FG0AL9U+WbaixYd9aKIrn9+hRANCAATGovPC/JdXIGfwHSZN8yssiJliph7R\n"
    "VpSXKmOuGxEPOpYpWL45P4vD8+Sew+XYpW4lepU5k9ACAjDFcMFdmgJE\n"
    "-----END PRIVATE KEY-----\n";

const char proto_vec_identity_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExqLzwvyXVyBn8B0mTfMrLIiZYqYe\n"
    "0VaUlypjrhsRDzqWKVi+OT+Lw/PknsPl2KVuJXqVOZPQAgIwxXDBXZoCRA==\n"
    "-----END PUBLIC KEY-----\n";

const char proto_vec_device_id[] =
    "0ce17f0b2a589611ee12e8a6374854de93794f7c63c0c863f12f9c0c34ccc525";
const char proto_vec_csr_bytes[] = "aegis test csr";
const char proto_vec_csr_hash[] =
    "6d0453310873dc0d01777098ae920693d0394cbaa649b5cc5779914567aa1f8f";

const char proto_vec_message_hex[] =
    "41454749532d4154544553542d563100"
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "0ce17f0b2a589611ee12e8a6374854de93794f7c63c0c863f12f9c0c34ccc525"
    "701dcad8793bc4bb4e80a39c8373ad94eddcf3e4ace2cd59610d6afbae8845ae"
    "6d0453310873dc0d01777098ae920693d0394cbaa649b5cc5779914567aa1f8f";

const char proto_vec_signature_hex[] =
    "30450220058ae71dbbdff9f3b61d1c6cbb2239cb83736b60f1a8a66a79caf34a8b8e"
    "0aea022100973816cc05c13451bb6d7c1add5fd109dc49e3a01d41ad30b00dec4d"
    "9a87376f";
const char proto_vec_signature_b64[] =
    "MEUCIAWK5x273/nzth0cbLsiOcuDc2tg8aimannK80qLjgrqAiEAlzgWzAXBNFG7bXwa3V/"
    "RCdxJ46AdQa0wsA3sTZqHN28=";
