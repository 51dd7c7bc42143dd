# The shop team's workspace. The platform team's modules come from their
# git server; imgbuild.lock pins the commit and content of the release.
module(name = "shop")
dep("platform", git = "https://git.example.com/platform/modules.git", ref = "v1.0.0")
