@0x867c605169a0452e;

# The Desert Atlas package, built with vagrant-spk (`vagrant-spk vm up && vagrant-spk dev`,
# then `vagrant-spk pack desert-atlas.spk`). The app id is the one existing grains were made
# with, so this package upgrades them; it must be signed with the same key.

using Spk = import "/sandstorm/package.capnp";

const pkgdef :Spk.PackageDefinition = (
  id = "e5eaqnrqfrhgax1awtgw9uqayg42kcen2gkpynjs3j5mww7w3rp0",

  manifest = (
    appTitle = (defaultText = "Desert Atlas"),
    appVersion = 39,
    appMarketingVersion = (defaultText = "0.2.0"),

    actions = [
      ( nounPhrase = (defaultText = "map"),
        command = .grainCommand
      )
    ],
    continueCommand = .grainCommand,

    metadata = (
      website = "https://github.com/orblivion/desert-atlas",
      codeUrl = "https://github.com/orblivion/desert-atlas",
      license = (openSource = mit),
      categories = [other],
      shortDescription = (defaultText = "World map"),
    ),
  ),

  sourceMap = (
    searchPath = [
      ( sourcePath = "." ),
      ( sourcePath = "/",
        hidePaths = [ "home", "proc", "sys",
                      "etc/passwd", "etc/hosts", "etc/host.conf",
                      "etc/nsswitch.conf", "etc/resolv.conf",
                      "opt/app/target/debug", "opt/app/target/release/deps",
                      "opt/app/target/release/build",
                      "opt/app/target/x86_64-unknown-linux-gnu/debug",
                      "opt/app/target/x86_64-unknown-linux-gnu/release/deps",
                      "opt/app/target/x86_64-unknown-linux-gnu/release/build", "opt/app/build/cache",
                      "opt/app/web/node_modules", "opt/app/tools", "opt/app/tests" ]
      )
    ]
  ),

  fileList = "sandstorm-files.list",

  # What the grain runs, whether or not `spk dev` saw it used.
  alwaysInclude = [
    "opt/app/target/x86_64-unknown-linux-gnu/release/desert-atlas",
    "opt/app/nginx/nginx.conf",
    "opt/app/build/nginx/nginx",
  ],

  bridgeConfig = (
    viewInfo = (
      # Existing grains store permissions by position: only ever append.
      permissions = [
        ( name = "download",
          title = (defaultText = "download regions"),
          description = (defaultText = "grants ability to download regions"),
        ),
        ( name = "bookmarks",
          title = (defaultText = "edit bookmarks"),
          description = (defaultText = "grants ability to edit bookmarks"),
        ),
      ],
      roles = [
        ( title = (defaultText = "editor"),
          permissions = [true, true],
          verbPhrase = (defaultText = "can download regions and edit bookmarks"),
        ),
        ( title = (defaultText = "bookmarker"),
          permissions = [false, true],
          verbPhrase = (defaultText = "can edit bookmarks"),
          description = (defaultText = "bookmarkers may edit bookmarks."),
        ),
        ( title = (defaultText = "viewer"),
          permissions = [false, false],
          verbPhrase = (defaultText = "can view the map"),
          description = (defaultText = "viewers may view maps that other users have put together."),
        ),
      ],
    ),
  ),
);

const grainCommand :Spk.Manifest.Command = (
  # The server binds its port, then starts nginx (port 8003) and lives and dies with it: no shell.
  argv = ["/sandstorm-http-bridge", "8003", "--",
          "/opt/app/target/x86_64-unknown-linux-gnu/release/desert-atlas", "serve",
          "--start-nginx", "/opt/app/nginx/nginx.conf", "--nginx", "/opt/app/build/nginx/nginx"],
  environ = [
    (key = "PATH", value = "/usr/local/bin:/usr/bin:/bin"),
    (key = "SANDSTORM", value = "1"),
    (key = "HOME", value = "/var"),
  ]
);
