"""`lutc-opt`: xDSL's opt driver with the `lut` dialect and lutc's passes registered."""

from xdsl.xdsl_opt_main import xDSLOptMain


class LutcOptMain(xDSLOptMain):
    version_format = "lutc-opt built on xdsl {xdsl_version}"

    def register_all_dialects(self):
        super().register_all_dialects()
        from lutc.dialects.lut import LUT

        self.ctx.load_dialect(LUT)

    def register_all_passes(self):
        super().register_all_passes()
        from lutc.passes import PASSES

        for name, factory in PASSES.items():
            self.register_pass(name, factory)


def main() -> None:
    LutcOptMain().run()


if __name__ == "__main__":
    main()
