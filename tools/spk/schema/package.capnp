@0xdf9bc20172856a3a;
# The parts of Sandstorm's package format that this project reads and writes: the package
# definition (evaluated from .sandstorm/sandstorm-pkgdef.capnp), the manifest and bridge
# configuration it carries, the keyring, and the signed archive of an spk.
#
# Written for this project, not copied: every struct keeps Sandstorm's type id (the file id above
# makes the ids of the nested package structs come out the same; the ones Sandstorm declares in
# util.capnp and grain.capnp are given explicitly) and every field keeps Sandstorm's ordinal and
# type, so the encoded messages are laid out exactly as Sandstorm's own schema lays them out.
# Fields this project never sets but whose slots must stay reserved are `AnyPointer`: a pointer
# slot whatever its type, so the layout holds; a package definition that sets one of them fails to
# evaluate instead of being packed wrongly.
#
# `spk pack` writes this file as /sandstorm/package.capnp for `capnp eval`, which is what the
# package definition imports.

# ---- from Sandstorm's util.capnp -------------------------------------------------------------

struct LocalizedText @0x8b5db772377be249 {
  defaultText @0 :Text;
  localizations @1 :List(Localization);
  struct Localization {
    locale @0 :Text;
    text @1 :Text;
  }
}

struct KeyValue @0x94a081e4abb13424 {
  key @0 :Text;
  value @1 :Text;
}

# ---- from Sandstorm's grain.capnp ------------------------------------------------------------

struct ViewInfo @0xbc5e354741a8e665 {
  permissions @0 :List(PermissionDef);
  roles @1 :List(RoleDef);
  deniedPermissions @2 :List(Bool);
  matchRequests @3 :AnyPointer;
  matchOffers @4 :AnyPointer;
  appTitle @5 :LocalizedText;
  grainIcon @6 :AnyPointer;
  eventTypes @7 :AnyPointer;
}

struct PermissionDef @0xf144a5e58889dafb {
  title @0 :LocalizedText;
  description @1 :LocalizedText;
  obsolete @2 :Bool = false;
  name @3 :Text;
}

struct RoleDef @0xcb3f7064eae4dc5a {
  title @0 :LocalizedText;
  verbPhrase @1 :LocalizedText;
  description @2 :LocalizedText;
  permissions @3 :List(Bool);
  obsolete @4 :Bool = false;
  default @5 :Bool = false;
}

# ---- from Sandstorm's package.capnp ----------------------------------------------------------

struct PackageDefinition {
  id @0 :Text;
  manifest @1 :Manifest;
  sourceMap @2 :SourceMap;
  fileList @3 :Text;
  alwaysInclude @4 :List(Text);
  bridgeConfig @5 :BridgeConfig;
}

struct Manifest {
  const sizeLimitInWords :UInt64 = 1048576;

  minApiVersion @0 :UInt32;
  maxApiVersion @1 :UInt32;
  actions @2 :List(Action);
  continueCommand @3 :Command;
  appVersion @4 :UInt32;
  minUpgradableAppVersion @5 :UInt32;
  appMarketingVersion @6 :LocalizedText;
  appTitle @7 :LocalizedText;
  metadata @8 :Metadata;

  struct Command {
    deprecatedExecutablePath @0 :Text;
    argv @1 :List(Text);
    environ @2 :List(KeyValue);
  }

  struct Action {
    input :union {
      none @0 :Void;
      capability @1 :AnyPointer;
    }
    command @2 :Command;
    title @3 :LocalizedText;
    description @4 :LocalizedText;
    nounPhrase @5 :LocalizedText;
  }
}

struct SourceMap {
  searchPath @0 :List(Mapping);
  struct Mapping {
    packagePath @0 :Text;
    sourcePath @1 :Text;
    hidePaths @2 :List(Text);
  }
}

struct BridgeConfig {
  viewInfo @0 :ViewInfo;
  apiPath @1 :Text;
  saveIdentityCaps @2 :Bool;
  powerboxApis @3 :AnyPointer;
  expectAppHooks @4 :Bool;
}

struct Metadata {
  icons :group {
    appGrid @0 :Icon;
    grain @1 :Icon;
    market @2 :Icon;
    marketBig @18 :Icon;
  }
  website @3 :Text;
  codeUrl @4 :Text;
  license :group {
    union {
      none @5 :Void;
      openSource @6 :OpenSourceLicense;
      proprietary @7 :LocalizedText;
      publicDomain @8 :LocalizedText;
    }
    notices @9 :LocalizedText;
  }
  categories @10 :List(Category);
  author :group {
    upstreamAuthor @19 :Text;
    contactEmail @11 :Text;
    pgpSignature @12 :Data;
  }
  pgpKeyring @13 :Data;
  description @14 :LocalizedText;
  shortDescription @15 :LocalizedText;
  screenshots @16 :List(Screenshot);
  changeLog @17 :LocalizedText;

  struct Icon {
    union {
      unknown @0 :Void;
      svg @1 :Text;
      png :group {
        dpi1x @2 :Data;
        dpi2x @3 :Data;
      }
    }
  }

  struct Screenshot {
    width @0 :UInt32;
    height @1 :UInt32;
    union {
      unknown @2 :Void;
      png @3 :Data;
      jpeg @4 :Data;
    }
  }
}

enum OpenSourceLicense {
  invalid @0; mit @1; apache2 @2; gpl3 @3; agpl3 @4; bsd3Clause @5; bsd2Clause @6; gpl2 @7;
  lgpl2 @8; lgpl3 @9; isc @10; artistic2 @11; python2 @12; php3 @13; mpl2 @14; cddl @15;
  epl @16; cpal @17; zlib @18;
}

enum Category {
  other @0; productivity @1; communications @2; social @3; webPublishing @4; office @5;
  developerTools @6; science @7; media @8; games @9; graphics @10;
}

struct KeyFile {
  # One entry of a keyring: libsodium's crypto_sign key pair (private key = seed ‖ public key).
  publicKey @0 :Data;
  privateKey @1 :Data;
}

const magicNumber :Data = "\x8f\xc6\xcd\xef\x45\x1a\xea\x96";

struct Signature {
  # crypto_sign (ed25519, combined form) of the SHA-512 of the Archive message's bytes.
  publicKey @0 :Data;
  signature @1 :Data;
}

struct Archive {
  files @0 :List(File);
  struct File {
    name @0 :Text;
    union {
      regular @1 :Data;
      executable @2 :Data;
      symlink @3 :Text;
      directory @4 :List(File);
    }
    lastModificationTimeNs @5 :Int64;
  }
}
