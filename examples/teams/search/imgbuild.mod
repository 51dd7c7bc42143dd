# The search team's workspace. The platform team's modules come from their
# git server; imgbuild.lock pins the commit and content of the release.
module(name = "search")
dep("platform", git = "https://git.example.com/platform/modules.git", ref = "v2.0.0")
