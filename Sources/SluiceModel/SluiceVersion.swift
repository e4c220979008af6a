/// Sluice's version: `sluice --version`, and the creator HAR exports name.
public enum SluiceVersion {
    public static let current = "0.1.0"
}
