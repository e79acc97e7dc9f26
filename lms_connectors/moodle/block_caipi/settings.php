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
 * Site settings of the CAIPI block.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($ADMIN->fulltree) {
    $settings->add(new admin_setting_configtext('block_caipi/caipiurl',
        get_string('caipiurl', 'block_caipi'), get_string('caipiurl_desc', 'block_caipi'), '', PARAM_URL));
    $settings->add(new admin_setting_configtext('block_caipi/defaultheight',
        get_string('defaultheight', 'block_caipi'), get_string('defaultheight_desc', 'block_caipi'), 480, PARAM_INT));
}
