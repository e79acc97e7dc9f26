<?php
// This file is part of CAIPI's Moodle block (block_caipi).
//
// This program is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// This program is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with this program.  If not, see <http://www.gnu.org/licenses/>.


/**
 * Privacy provider of the CAIPI block.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace block_caipi\privacy;

/**
 * The block stores no personal data: it only shows a CAIPI activity's launch, and what that
 * launch sends is declared by the External tool (mod_lti) privacy provider.
 */
class provider implements \core_privacy\local\metadata\null_provider {
    /**
     * The language string that explains why nothing is stored.
     *
     * @return string
     */
    public static function get_reason(): string {
        return 'privacy:metadata';
    }
}
